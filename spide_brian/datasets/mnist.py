"""MNIST and Fashion-MNIST from their IDX files, gzipped or not (docs/data.md D1).

The four files of each dataset (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally with ``.gz``) are looked
for in the folders of :func:`spide_brian.datasets.cache.candidate_dirs`, in this order:

1. ``data_dir``, ``data_dir/<folder>`` and ``data_dir/<folder>/raw`` (the torchvision layout),
   with ``<folder>`` the dataset's name or one of :attr:`IdxSource.folder_names` (``mnist``,
   ``MNIST``; ``fashion-mnist``, ``FashionMNIST``, ``fashion_mnist``);
2. the same under each system folder: Debian's package ``dataset-fashion-mnist`` installs the
   full Fashion-MNIST files under ``/usr/share/datasets/fashion-mnist``;
3. the same under the cache ``~/.cache/spide-brian``. Missing files are downloaded (MD5 checked)
   into ``data_dir``, or into ``~/.cache/spide-brian/<name>`` when no ``data_dir`` is given.

Pixels are scaled to ``[0, 1]`` and standardised:

.. math:: x = \\frac{p / 255 - \\mu}{\\sigma},

with :math:`(\\mu, \\sigma) = (0.1307, 0.3081)` for MNIST and :math:`(0.2860, 0.3530)` for
Fashion-MNIST (the mean and standard deviation of its 60000 training images).
"""
from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from brian2.utils.logger import get_logger

from .base import DataError, Dataset, register_dataset
from .cache import candidate_dirs, download_dir, download_file

__all__ = ["IdxSource", "MNIST", "FASHION_MNIST", "IDX_FILES", "read_idx", "idx_file_names",
           "find_idx_files", "load_idx_dataset", "load_mnist", "load_fashion_mnist"]

logger = get_logger(__name__)

IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class IdxSource:
    """Where an IDX dataset lives and how it is normalised.

    Parameters
    ----------
    name : str
        Registry name, also the first sub-folder searched and the download folder in the cache.
    folder_names : tuple of str
        Further sub-folder names searched under each root folder.
    url : str
        Base address of the official ``.gz`` files.
    md5 : dict
        MD5 of each official ``.gz`` file, checked after a download.
    mean, std : float
        Standardisation of the ``[0, 1]`` pixels.
    classes : int
        Number of classes.
    """

    name: str
    folder_names: tuple
    url: str
    md5: dict
    mean: float
    std: float
    classes: int = 10


MNIST = IdxSource(
    "mnist", ("mnist", "MNIST"), "https://ossci-datasets.s3.amazonaws.com/mnist/",
    {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
     "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
     "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
     "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    0.1307, 0.3081)
FASHION_MNIST = IdxSource(
    "fashion-mnist", ("fashion-mnist", "FashionMNIST", "fashion_mnist"),
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
     "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
     "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
     "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
    0.2860, 0.3530)


def read_idx(path):
    """Read an IDX file (optionally gzipped) into a numpy array.

    The IDX format: two zero bytes, a type code (``0x08`` = uint8, ...), the number of
    dimensions ``d``, then ``d`` big-endian uint32 sizes and the data in C order.

    Parameters
    ----------
    path : str or Path
        The file; it is read through gzip when its name ends in ``.gz``.

    Returns
    -------
    ndarray
        The array of the shape and dtype the header gives (a read-only view of the bytes).

    Raises
    ------
    DataError
        For a bad magic number, a truncated or over-long file or a corrupt gzip stream.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read ({error}); the file is corrupt or truncated, "
                        f"delete it and get it again") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()}); "
                        f"delete it and get it again")
    dtype, ndim = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header; delete the file and get it again")
    shape = tuple(int(size) for size in np.frombuffer(raw, ">u4", ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path}: {len(raw)} bytes but the IDX header {shape} needs {expected}; "
                        f"the file is truncated or corrupt, delete it and get it again")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def idx_file_names(stem):
    """The file names an IDX file is recognised by, in order of preference: the official name
    raw and gzipped, then the same with a dot before ``idx`` (``train-images.idx3-ubyte``,
    as some copies of the files are named)."""
    dotted = stem.replace("-idx", ".idx")
    return (stem, stem + ".gz", dotted, dotted + ".gz")


def find_idx_files(source, data_dir=None):
    """Paths of the four IDX files of ``source``.

    Each file is looked for under the names of :func:`idx_file_names` in the folders listed in
    the module docstring; the first folder holding it wins, the raw file before the gzipped
    one.

    Parameters
    ----------
    source : IdxSource
    data_dir : str or Path, optional

    Returns
    -------
    dict
        ``{stem: Path or None}`` for each name of :data:`IDX_FILES`; None where not found.
    """
    folders = candidate_dirs(data_dir, (source.name,) + source.folder_names, ("", "raw"))
    found = {}
    for stem in IDX_FILES:
        found[stem] = next((folder / name for folder in folders
                            for name in idx_file_names(stem) if (folder / name).is_file()),
                           None)
    return found


def _missing_message(source, data_dir, missing):
    target = download_dir(source.name, data_dir)
    files = ", ".join(f"{stem}.gz" for stem in missing)
    extra = (" (or on Debian: apt-get install dataset-fashion-mnist)"
             if source is FASHION_MNIST else "")
    return (f"{source.name}: missing {files}; get them from {source.url} and put them in "
            f"{target}{extra}")


def _download_missing(source, data_dir, found):
    target = download_dir(source.name, data_dir)
    for stem, path in found.items():
        if path is None:
            name = stem + ".gz"
            try:
                found[stem] = download_file(source.url + name, target / name, source.md5[name],
                                            what=f"{source.name} {name}")
            except DataError as error:
                missing = [s for s, p in found.items() if p is None]
                raise DataError(f"{_missing_message(source, data_dir, missing)}. "
                                f"Download failed: {error}") from error
    return found


def load_idx_dataset(source, data_dir=None, download=True):
    """Load an IDX dataset (MNIST layout) as a :class:`~spide_brian.datasets.Dataset`.

    Parameters
    ----------
    source : IdxSource
    data_dir : str or Path, optional
        Folder searched first (see the module docstring).
    download : bool
        Download missing files (into ``data_dir``, or the cache folder if None).

    Returns
    -------
    Dataset
        ``x`` of shape ``(n, 784)``, standardised pixels, float64; ``input_shape`` (28, 28).

    Raises
    ------
    DataError
        When files are missing (and cannot be downloaded), unreadable, empty, of the wrong
        shape or type, or when labels do not match the images.
    """
    found = find_idx_files(source, data_dir)
    missing = [stem for stem, path in found.items() if path is None]
    if missing and not download:
        raise DataError(_missing_message(source, data_dir, missing))
    if missing:
        found = _download_missing(source, data_dir, found)
    logger.debug(f"{source.name}: reading {', '.join(str(p) for p in found.values())}")
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        image_path = found[f"{prefix}-images-idx3-ubyte"]
        images, labels = read_idx(image_path), read_idx(found[f"{prefix}-labels-idx1-ubyte"])
        if images.size == 0:
            raise DataError(f"{image_path}: holds no {split} images (IDX shape {images.shape}); "
                            f"the file is truncated or not from {source.name}, delete it and "
                            "get it again")
        splits[split] = _check_split(source, split, images, labels)
    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    return Dataset(source.name, x_train, y_train, x_test, y_test, source.classes, (28, 28))


def _check_split(source, split, images, labels):
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{source.name} {split}: images must be uint8 of shape (n, rows, cols), "
                        f"got {images.dtype} {images.shape}")
    if images.shape[1:] != (28, 28):
        raise DataError(f"{source.name} {split}: images are {images.shape[1:]}, expected 28 x 28")
    if labels.ndim != 1:
        raise DataError(f"{source.name} {split}: labels must be one-dimensional, got "
                        f"{labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{source.name} {split}: {len(images)} images but {len(labels)} labels; "
                        f"the image and label files do not belong together")
    labels = labels.astype(np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= source.classes):
        raise DataError(f"{source.name} {split}: labels range over [{labels.min()}, "
                        f"{labels.max()}], outside [0, {source.classes})")
    x = (images.reshape(len(images), -1) / 255.0 - source.mean) / source.std
    return x, labels


@register_dataset("mnist")
def load_mnist(data_dir=None, download=True):
    """MNIST: 60000 / 10000 handwritten digits, standardised with (0.1307, 0.3081).

    Parameters
    ----------
    data_dir : str or Path, optional
    download : bool
        Download missing files.

    Returns
    -------
    Dataset
        See :func:`load_idx_dataset`.
    """
    return load_idx_dataset(MNIST, data_dir, download)


@register_dataset("fashion-mnist")
def load_fashion_mnist(data_dir=None, download=True):
    """Fashion-MNIST: 60000 / 10000 clothing images, standardised with (0.2860, 0.3530).

    Parameters
    ----------
    data_dir : str or Path, optional
    download : bool
        Download missing files.

    Returns
    -------
    Dataset
        See :func:`load_idx_dataset`.
    """
    return load_idx_dataset(FASHION_MNIST, data_dir, download)
