"""CIFAR-10 and CIFAR-100 from the python pickles, normalised per channel (docs/data.md D2).

Files are read from the extracted folder (``cifar-10-batches-py/`` or ``cifar-100-python/``) or
straight from the official archive (``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``),
looked for in the folders of :func:`spide_brian.datasets.cache.candidate_dirs` without the
system folders: ``data_dir``, ``data_dir/<name>``, the cache ``~/.cache/spide-brian`` and
``~/.cache/spide-brian/<name>``. When none holds them and the machine is online, the archive is
downloaded into ``data_dir`` (or ``~/.cache/spide-brian/<name>``) and its MD5 checked.

Both train and test images are normalised per channel ``c``:

.. math:: x_c = \\frac{p_c / 255 - \\mu_c}{\\sigma_c},\\quad
          \\mu = (0.4914, 0.4822, 0.4465),\\ \\sigma = (0.2023, 0.1994, 0.2010),

and flattened in channel-major order ``(3, 32, 32)`` (the PyTorch layout). The training-set
augmentation is :data:`spide_brian.datasets.augmentation.CIFAR_AUGMENTATION`, applied to the
training inputs of each epoch by the training driver.

The pickles are read with an unpickler that only accepts the numpy types the CIFAR files hold.
"""
from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass

import numpy as np

from .base import DataError, Dataset, register_dataset
from .cache import candidate_dirs, download_dir, download_file

__all__ = ["CifarSource", "CIFAR10", "CIFAR100", "CIFAR_MEAN", "CIFAR_STD", "IMAGE_SHAPE",
           "read_cifar_pickle", "load_cifar", "load_cifar10", "load_cifar100"]

#: Per-channel mean of the ``[0, 1]`` pixels.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
#: Per-channel standard deviation of the ``[0, 1]`` pixels.
CIFAR_STD = (0.2023, 0.1994, 0.2010)
#: Shape ``(channels, height, width)`` of one image.
IMAGE_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class CifarSource:
    """Where a CIFAR variant lives and how its pickles are laid out.

    Parameters
    ----------
    name : str
        Registry name.
    folder : str
        Folder inside the archive.
    archive, url, md5 : str
        The official archive, its address and MD5.
    train_files, test_files : tuple of str
        Pickles (inside ``folder``) of each split, concatenated in this order.
    label_key : bytes
        Dictionary key of the labels in each pickle.
    classes : int
        Number of classes.
    """

    name: str
    folder: str
    archive: str
    url: str
    md5: str
    train_files: tuple
    test_files: tuple
    label_key: bytes
    classes: int


CIFAR10 = CifarSource(
    "cifar10", "cifar-10-batches-py", "cifar-10-python.tar.gz",
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
    tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), b"labels", 10)
CIFAR100 = CifarSource(
    "cifar100", "cifar-100-python", "cifar-100-python.tar.gz",
    "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
    ("train",), ("test",), b"fine_labels", 100)

_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _CifarUnpickler(pickle.Unpickler):
    """Refuses every global but those that rebuild numpy arrays (a pickle can run any code)."""

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_cifar_pickle(raw, label_key, origin):
    """Images and labels of one CIFAR pickle.

    Parameters
    ----------
    raw : bytes
        The pickle's content.
    label_key : bytes
        Dictionary key of the labels (``b"labels"`` or ``b"fine_labels"``).
    origin : str
        Named in error messages.

    Returns
    -------
    images : ndarray, shape (n, 3072), uint8
    labels : ndarray, shape (n,), int64

    Raises
    ------
    DataError
        For a truncated or foreign pickle, missing keys, a wrong image size or a count mismatch.
    """
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError) as error:
        raise DataError(f"{origin}: not a readable CIFAR pickle ({error}); the file is truncated, "
                        f"corrupt or not from CIFAR: delete it and get it again") from error
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{origin}: expected a dict with keys b'data' and {label_key!r}, "
                        f"got {keys}")
    images = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key])
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != np.prod(IMAGE_SHAPE):
        raise DataError(f"{origin}: images must be uint8 (n, 3072), got {images.dtype} "
                        f"{images.shape}")
    if len(images) == 0:
        raise DataError(f"{origin}: holds no images; the file is truncated or not from CIFAR, "
                        "delete it and get it again")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{origin}: {len(images)} images but {labels.size} labels")
    return images, labels.astype(np.int64)


def _pickle_reader(source, data_dir):
    """A function ``name -> bytes`` for the first place holding all pickles of ``source``,
    and that place (None, None when there is none)."""
    names = source.train_files + source.test_files
    for root in candidate_dirs(data_dir, (source.name,), system=False):
        folder = root / source.folder
        if all((folder / name).is_file() for name in names):
            return lambda name: (folder / name).read_bytes(), folder
        if (root / source.archive).is_file():
            return _archive_reader(root / source.archive, source), root / source.archive
    return None, None


def _archive_reader(path, source):
    def read(name):
        member = f"{source.folder}/{name}"
        try:
            with tarfile.open(path, "r:gz") as archive:
                return archive.extractfile(member).read()
        except KeyError as error:
            raise DataError(f"{path}: no member {member}; this is not the official "
                            f"{source.archive}") from error
        except (tarfile.TarError, OSError, EOFError) as error:
            raise DataError(f"{path}: cannot read the archive ({error}); it is truncated or "
                            f"corrupt, delete it and get it again") from error
    return read


def load_cifar(source, data_dir=None, download=True, normalize=True):
    """Load CIFAR-10 or CIFAR-100 as a :class:`~spide_brian.datasets.Dataset`.

    Parameters
    ----------
    source : CifarSource
    data_dir : str or Path, optional
    download : bool
        Download the archive when no copy is found.
    normalize : bool
        Standardise per channel (docs/data.md D2); otherwise pixels / 255.

    Returns
    -------
    Dataset
        ``x`` of shape ``(n, 3072)`` float64 in channel-major order, ``input_shape`` (3, 32, 32).

    Raises
    ------
    DataError
        When no copy is found (and none can be downloaded), or a pickle or the archive is
        unreadable, malformed or holds labels outside ``[0, classes)``.
    """
    read, origin = _pickle_reader(source, data_dir)
    if read is None:
        target = download_dir(source.name, data_dir)
        wanted = (f"{source.archive} from {source.url} (MD5 {source.md5}) and put it (or its "
                  f"extracted folder {source.folder}/) in {target}")
        if not download:
            raise DataError(f"{source.name}: no data found; get {wanted}")
        try:
            archive = download_file(source.url, target / source.archive, source.md5,
                                    what=source.name)
        except DataError as error:
            raise DataError(f"{source.name}: no data found; get {wanted}. Download failed: "
                            f"{error}") from error
        read, origin = _archive_reader(archive, source), archive
    splits = []
    for files in (source.train_files, source.test_files):
        parts = [read_cifar_pickle(read(name), source.label_key, f"{origin}:{name}")
                 for name in files]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if len(labels) and (labels.min() < 0 or labels.max() >= source.classes):
            raise DataError(f"{source.name} ({origin}): labels range over [{labels.min()}, "
                            f"{labels.max()}], outside [0, {source.classes})")
        splits += [_normalise(images, normalize), labels]
    return Dataset(source.name, *splits, source.classes, IMAGE_SHAPE)


def _normalise(images, normalize):
    x = images.reshape(len(images), 3, -1) / 255.0
    if normalize:
        x = (x - np.array(CIFAR_MEAN)[:, None]) / np.array(CIFAR_STD)[:, None]
    return x.reshape(len(images), -1)


@register_dataset("cifar10")
def load_cifar10(data_dir=None, download=True, normalize=True):
    """CIFAR-10: 50000 / 10000 colour images of 10 classes.

    Parameters
    ----------
    data_dir : str or Path, optional
    download : bool
        Download the archive when no copy is found.
    normalize : bool
        Standardise per channel; otherwise pixels / 255.

    Returns
    -------
    Dataset
        See :func:`load_cifar`.
    """
    return load_cifar(CIFAR10, data_dir, download, normalize)


@register_dataset("cifar100")
def load_cifar100(data_dir=None, download=True, normalize=True):
    """CIFAR-100: 50000 / 10000 colour images, 100 fine classes.

    Parameters
    ----------
    data_dir : str or Path, optional
    download : bool
        Download the archive when no copy is found.
    normalize : bool
        Standardise per channel; otherwise pixels / 255.

    Returns
    -------
    Dataset
        See :func:`load_cifar`.
    """
    return load_cifar(CIFAR100, data_dir, download, normalize)
