"""MNIST / Fashion-MNIST (IDX) and CIFAR-10/100 (pickles) loaders on small fake files."""
import gzip
import hashlib
import io
import pickle
import tarfile
import urllib.error

import numpy as np
import pytest

from spide_brian.datasets import augmentation, cache, cifar, mnist
from spide_brian.datasets import DataError, load_dataset


def write_idx(path, array, compress=None):
    """Write ``array`` (uint8) as an IDX file; gzipped when the name ends in ``.gz``."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    raw = header + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(raw)
    return path


def make_idx_set(folder, n_train=12, n_test=5, gz=True, rng=None):
    """The four MNIST files with random images; returns the arrays written."""
    rng = rng or np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        arrays[prefix] = images, labels
    return arrays


@pytest.fixture(autouse=True)
def no_system_or_network(monkeypatch, tmp_path):
    """Loaders see neither system datasets, the user's cache, nor the network."""
    monkeypatch.setattr(cache, "SYSTEM_DATA_DIRS", ())
    monkeypatch.setattr(cache, "DEFAULT_DATA_DIR", tmp_path / "cache")

    def offline(url):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(cache, "open_url", offline)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_and_standardises(tmp_path, gz):
    arrays = make_idx_set(tmp_path, gz=gz)
    data = load_dataset("mnist", data_dir=tmp_path)
    images, labels = arrays["train"]
    assert data.x_train.shape == (12, 784) and data.x_test.shape == (5, 784)
    assert data.x_train.dtype == np.float64 and data.input_shape == (28, 28)
    np.testing.assert_allclose(data.x_train, (images.reshape(12, -1) / 255 - 0.1307) / 0.3081)
    np.testing.assert_array_equal(data.y_train, labels)
    np.testing.assert_array_equal(data.y_test, arrays["t10k"][1])


def test_idx_files_named_with_a_dot_are_found(tmp_path):
    """``train-images.idx3-ubyte`` (a common renaming) is read like the official name."""
    arrays = make_idx_set(tmp_path, gz=False)
    for path in tmp_path.iterdir():
        path.rename(tmp_path / path.name.replace("-idx", ".idx"))
    data = load_dataset("mnist", data_dir=tmp_path)
    np.testing.assert_array_equal(data.y_test, arrays["t10k"][1])
    assert mnist.find_idx_files(mnist.MNIST, tmp_path)["train-images-idx3-ubyte"].name == \
        "train-images.idx3-ubyte"


def test_fashion_mnist_found_in_torchvision_and_system_layouts(tmp_path, monkeypatch):
    arrays = make_idx_set(tmp_path / "FashionMNIST" / "raw")
    data = load_dataset("fashion-mnist", data_dir=tmp_path)
    expected = (arrays["t10k"][0][0].ravel() / 255 - 0.2860) / 0.3530
    np.testing.assert_allclose(data.x_test[0], expected)
    system = tmp_path / "usr-share-datasets"
    arrays = make_idx_set(system / "fashion-mnist", n_train=7, rng=np.random.default_rng(3))
    monkeypatch.setattr(cache, "SYSTEM_DATA_DIRS", (system,))
    data = load_dataset("fashion-mnist")
    assert len(data.y_train) == 7
    np.testing.assert_array_equal(data.y_train, arrays["train"][1])


def test_missing_files_say_what_and_where(tmp_path):
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz.*put them in .*" +
                       str(tmp_path.name)) as error:
        mnist.load_mnist(tmp_path, download=False)
    assert "ossci-datasets" in str(error.value)
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        mnist.load_fashion_mnist(tmp_path, download=False)


def test_offline_download_fails_clearly_and_leaves_nothing(tmp_path):
    with pytest.raises(DataError, match=r"missing .*train-images.*Download failed.*offline"):
        load_dataset("mnist", data_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_download_checks_md5(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "open_url", lambda url: io.BytesIO(b"not the file"))
    with pytest.raises(DataError, match="MD5"):
        cache.download_file("http://example.invalid/x.gz", tmp_path / "x.gz", md5="0" * 32)
    assert list(tmp_path.iterdir()) == []
    good = cache.download_file("http://example.invalid/x.gz", tmp_path / "x.gz",
                               md5=hashlib.md5(b"not the file").hexdigest())
    assert good.read_bytes() == b"not the file"


@pytest.mark.parametrize("damage,message", [
    (lambda raw: b"\x00\x00\x07\x03" + raw[4:], "bad magic"),
    (lambda raw: raw[:-10], "truncated"),
    (lambda raw: raw + b"\x00", "truncated or corrupt"),
    (lambda raw: raw[:3], "bad magic"),
])
def test_corrupt_idx_files(tmp_path, damage, message):
    make_idx_set(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataError, match=message):
        mnist.load_mnist(tmp_path, download=False)


def test_bad_gzip_is_reported(tmp_path):
    make_idx_set(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match="corrupt or truncated"):
        mnist.load_mnist(tmp_path, download=False)
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError, match="corrupt or truncated"):
        mnist.load_mnist(tmp_path, download=False)


def test_mismatched_counts_and_label_range(tmp_path):
    make_idx_set(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(11))
    with pytest.raises(DataError, match="12 images but 11 labels"):
        mnist.load_mnist(tmp_path, download=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.full(12, 10))
    with pytest.raises(DataError, match=r"outside \[0, 10\)"):
        mnist.load_mnist(tmp_path, download=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(12))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((12, 32, 32)))
    with pytest.raises(DataError, match="expected 28 x 28"):
        mnist.load_mnist(tmp_path, download=False)


# CIFAR ---------------------------------------------------------------------------------------

def write_cifar(folder, source, counts, rng, archive=False):
    """Fake CIFAR pickles (dict with b'data' and the label key), as files or a .tar.gz."""
    written = {}
    members = []
    for name, n in zip(source.train_files + source.test_files, counts):
        images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batch_labels = list(rng.integers(0, source.classes, n))
        raw = pickle.dumps({b"batch_label": b"fake", source.label_key: batch_labels,
                            b"data": images}, protocol=2)
        members.append((f"{source.folder}/{name}", raw))
        written[name] = images, np.array(batch_labels)
    if archive:
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(folder / source.archive, "w:gz") as tar:
            for member, raw in members:
                info = tarfile.TarInfo(member)
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
    else:
        for member, raw in members:
            (folder / member).parent.mkdir(parents=True, exist_ok=True)
            (folder / member).write_bytes(raw)
    return written


def test_cifar10_batches_concatenated_and_normalised(tmp_path, rng):
    written = write_cifar(tmp_path, cifar.CIFAR10, [3, 2, 4, 1, 2, 5], rng)
    data = load_dataset("cifar10", data_dir=tmp_path)
    assert data.x_train.shape == (12, 3072) and data.x_test.shape == (5, 3072)
    assert data.input_shape == (3, 32, 32)
    np.testing.assert_array_equal(
        data.y_train, np.concatenate([written[f"data_batch_{i}"][1] for i in range(1, 6)]))
    pixel = written["data_batch_2"][0][1]
    expected = (pixel.reshape(3, -1) / 255 - np.array(cifar.CIFAR_MEAN)[:, None]) / \
        np.array(cifar.CIFAR_STD)[:, None]
    np.testing.assert_allclose(data.x_train[4], expected.ravel())
    raw = cifar.load_cifar10(tmp_path, normalize=False)
    np.testing.assert_allclose(raw.x_test, written["test_batch"][0] / 255)


def test_cifar100_read_from_the_archive(tmp_path, rng):
    written = write_cifar(tmp_path / "cifar100", cifar.CIFAR100, [6, 3], rng, archive=True)
    data = load_dataset("cifar100", data_dir=tmp_path)
    assert data.n_classes == 100 and data.x_train.shape == (6, 3072)
    np.testing.assert_array_equal(data.y_test, written["test"][1])


def test_cifar_errors(tmp_path, rng):
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz from https://www\.cs\.toronto"
                       r".*c58f30108f718f92721af3b95e74349a.*put it .* in " + str(tmp_path)):
        cifar.load_cifar10(tmp_path, download=False)
    with pytest.raises(DataError, match="Download failed"):
        cifar.load_cifar10(tmp_path)
    write_cifar(tmp_path, cifar.CIFAR100, [4, 2], rng)
    path = tmp_path / "cifar-100-python" / "test"
    good = path.read_bytes()
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8),
                                   b"fine_labels": [3, 100]}))
    with pytest.raises(DataError, match=r"outside \[0, 100\)"):
        cifar.load_cifar100(tmp_path)
    path.write_bytes(good)
    assert len(cifar.load_cifar100(tmp_path).y_test) == 2
    path = tmp_path / "cifar-100-python" / "test"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="truncated, corrupt"):
        cifar.load_cifar100(tmp_path)
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [1]}))
    with pytest.raises(DataError, match="2 images but 1 labels"):
        cifar.load_cifar100(tmp_path)
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 1024), np.uint8),
                                   b"fine_labels": [1, 2]}))
    with pytest.raises(DataError, match=r"uint8 \(n, 3072\)"):
        cifar.load_cifar100(tmp_path)
    path.write_bytes(pickle.dumps({b"labels": [1]}))
    with pytest.raises(DataError, match="expected a dict with keys"):
        cifar.load_cifar100(tmp_path)


def test_cifar_pickles_cannot_run_code(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(DataError, match="refusing to load builtins.print"):
        cifar.read_cifar_pickle(pickle.dumps(Exploit()), b"labels", "fake")


def test_cifar_augmentation_crops_and_flips_consistently(rng):
    images = rng.normal(size=(64, 3, 32, 32))
    out = augmentation.random_crop_flip(images, np.random.default_rng(5), padding=4, flip=True,
                                        fill=(7.0, 8.0, 9.0))
    same = np.random.default_rng(5)
    dy, dx = same.integers(0, 9, (2, 64))
    flipped = same.random(64) < 0.5
    for i in range(64):
        padded = np.pad(images[i], ((0, 0), (4, 4), (4, 4)))
        for c, value in enumerate((7.0, 8.0, 9.0)):
            padded[c][(padded[c] == 0)] = value
        expected = padded[:, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        np.testing.assert_array_equal(out[i], expected[:, :, ::-1] if flipped[i] else expected)
    assert 10 < flipped.sum() < 54
    flat = augmentation.CIFAR_AUGMENTATION(images.reshape(64, -1), np.random.default_rng(5))
    assert flat.shape == (64, 3072)
    fills = np.array([-m / s for m, s in zip(cifar.CIFAR_MEAN, cifar.CIFAR_STD)])
    border = flat.reshape(64, 3, 32, 32)[dy < 4][:, :, 0, :]
    np.testing.assert_array_equal(
        border, np.broadcast_to(fills[None, :, None], border.shape))


@pytest.mark.parametrize("source,flips", [(mnist.MNIST, False), (mnist.FASHION_MNIST, True)])
def test_grey_scale_augmentation_shifts_with_a_black_border(source, flips, rng):
    """Pad 2, crop 28 x 28: every sample is its image moved by at most 2 pixels, the border is
    black (pixel 0 after standardisation); only garments are mirrored."""
    images = rng.normal(size=(200, 28, 28))
    out = augmentation.IDX_AUGMENTATIONS[source.name](images.reshape(200, 784),
                                                      np.random.default_rng(3))
    out = out.reshape(200, 28, 28)
    black = -source.mean / source.std
    mirrored = 0
    for i in range(200):
        padded = np.pad(images[i], 2, constant_values=black)
        crops = {(dy, dx, flip): padded[dy:dy + 28, dx:dx + 28][:, ::-1 if flip else 1]
                 for dy in range(5) for dx in range(5) for flip in (False, True)}
        matches = [key for key, crop in crops.items() if np.array_equal(crop, out[i])]
        assert len(matches) == 1
        mirrored += matches[0][2]
    assert (20 < mirrored < 180) if flips else mirrored == 0


def test_augment_flag_takes_the_idx_recipes():
    from spide_brian.cli import _augmentation

    assert _augmentation("fashion-mnist") is augmentation.IDX_AUGMENTATIONS["fashion-mnist"]
    assert _augmentation("mnist").flip is False


def test_idx_file_without_items_is_a_data_error_naming_it(tmp_path):
    make_idx_set(tmp_path)
    empty = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(empty, np.zeros((0, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(0))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: holds no train images"):
        load_dataset("mnist", data_dir=tmp_path)


def test_cifar_pickle_without_images_is_a_data_error_naming_it():
    raw = pickle.dumps({b"data": np.zeros((0, 3072), np.uint8), b"labels": []})
    with pytest.raises(DataError, match="data_batch_1: holds no images"):
        cifar.read_cifar_pickle(raw, b"labels", "cifar-10-batches-py:data_batch_1")


def test_missing_data_folder_is_reported_not_created(tmp_path):
    typo = tmp_path / "datsets"
    with pytest.raises(DataError, match="datsets does not exist; check --data-dir"):
        load_dataset("mnist", data_dir=typo)
    assert not typo.exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset("cifar10", data_dir=tmp_path / "file")
