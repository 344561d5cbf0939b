"""MNIST / Fashion-MNIST (IDX) and CIFAR-10/100 (pickles) loaders on small fake files."""
import gzip
import hashlib
import io
import urllib.error

import numpy as np
import pytest

from spide_brian import mnist
from spide_brian.data import DataError, load_dataset


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
    monkeypatch.setattr(mnist, "SYSTEM_DATA_DIRS", ())
    monkeypatch.setattr(mnist, "DEFAULT_DATA_DIR", tmp_path / "cache")

    def offline(url):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(mnist, "_open_url", offline)


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


def test_fashion_mnist_found_in_torchvision_and_system_layouts(tmp_path, monkeypatch):
    arrays = make_idx_set(tmp_path / "FashionMNIST" / "raw")
    data = load_dataset("fashion-mnist", data_dir=tmp_path)
    np.testing.assert_allclose(data.x_test[0], (arrays["t10k"][0][0].ravel() / 255 - 0.2860) / 0.3530)
    system = tmp_path / "usr-share-datasets"
    arrays = make_idx_set(system / "fashion-mnist", n_train=7, gz=True, rng=np.random.default_rng(3))
    monkeypatch.setattr(mnist, "SYSTEM_DATA_DIRS", (system,))
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
    monkeypatch.setattr(mnist, "_open_url", lambda url: io.BytesIO(b"not the file"))
    with pytest.raises(DataError, match="MD5"):
        mnist.download_file("http://example.invalid/x.gz", tmp_path / "x.gz", md5="0" * 32)
    assert list(tmp_path.iterdir()) == []
    good = mnist.download_file("http://example.invalid/x.gz", tmp_path / "x.gz",
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
