"""Where dataset files are looked for and downloaded to, and the download itself.

Three kinds of folders hold dataset files, searched in this order:

1. ``data_dir``, the folder the user names (``--data-dir``);
2. :data:`SYSTEM_DATA_DIRS`, folders that system packages install datasets into (Debian's
   ``dataset-fashion-mnist`` installs Fashion-MNIST under ``/usr/share/datasets``);
3. :data:`DEFAULT_DATA_DIR`, the cache, where files are downloaded when no ``data_dir`` is
   given.

A download (:func:`download_file`) is written under a temporary name in the destination folder
and renamed into place only when it is complete and its MD5 is right, so an interrupted or
corrupt download leaves no file behind. All network access goes through :func:`open_url`.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from brian2.utils.logger import get_logger

from .base import DataError

__all__ = ["DEFAULT_DATA_DIR", "SYSTEM_DATA_DIRS", "DOWNLOAD_TIMEOUT_S", "file_md5", "open_url",
           "download_file", "candidate_dirs", "download_dir", "data_root"]

logger = get_logger(__name__)

#: The cache: where downloads go when no ``data_dir`` is given.
DEFAULT_DATA_DIR = Path.home() / ".cache" / "spide-brian"
#: Folders that system packages install datasets into (searched after ``data_dir``).
SYSTEM_DATA_DIRS = (Path("/usr/share/datasets"),)
#: Seconds a download may wait for the server before it fails.
DOWNLOAD_TIMEOUT_S = 30


def file_md5(path):
    """MD5 digest of a file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str
        Hexadecimal digest; the file is read in 1 MiB blocks.
    """
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_url(url):
    """Open ``url`` for reading, with a timeout of :data:`DOWNLOAD_TIMEOUT_S` seconds.

    Parameters
    ----------
    url : str

    Returns
    -------
    file-like
        The response, to be used as a context manager.
    """
    return urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S)


def download_file(url, destination, md5=None, what=""):
    """Download ``url`` to ``destination`` and check its MD5.

    The file is written under a temporary name (suffix ``.part``) in the destination folder and
    renamed to ``destination`` only when it is complete and correct; the temporary file is
    removed in every case.

    Parameters
    ----------
    url : str
    destination : str or Path
        Path of the downloaded file; its folder is created if needed.
    md5 : str, optional
        Expected hexadecimal MD5 digest; not checked if None.
    what : str
        Name of the file in error messages (``destination``'s name if empty).

    Returns
    -------
    Path
        ``destination``.

    Raises
    ------
    DataError
        When the machine is offline or the server fails (the message names the file to get and
        the folder to put it in), or when the MD5 differs.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    manual = (f"download {url} yourself (MD5 {md5}) and put it in {destination.parent}"
              if md5 else f"download {url} yourself and put it in {destination.parent}")
    logger.info(f"downloading {url} to {destination}")
    handle, partial = tempfile.mkstemp(dir=destination.parent, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, open_url(url) as response:
            shutil.copyfileobj(response, out)
        if md5 is not None and file_md5(partial) != md5:
            raise DataError(f"{what or destination.name}: the download from {url} has MD5 "
                            f"{file_md5(partial)}, expected {md5}; {manual}")
        os.replace(partial, destination)
    except (urllib.error.URLError, OSError) as error:
        raise DataError(f"{what or destination.name} could not be downloaded ({error}); "
                        f"{manual}") from error
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return destination


def candidate_dirs(data_dir=None, folder_names=(), layouts=("",), system=True):
    """Folders that may hold a dataset's files, in search order.

    Parameters
    ----------
    data_dir : str or Path, optional
        The user's folder, searched first.
    folder_names : tuple of str
        Names of the dataset's own sub-folder (e.g. ``("mnist", "MNIST")``).
    layouts : tuple of str
        Paths inside each sub-folder to search, ``""`` for the sub-folder itself (e.g.
        ``("", "raw")`` for the torchvision layout ``MNIST/raw``).
    system : bool
        Also search :data:`SYSTEM_DATA_DIRS` (between ``data_dir`` and the cache).

    Returns
    -------
    list of Path
        For each root (``data_dir`` if given, the system folders if ``system``, then
        :data:`DEFAULT_DATA_DIR`): the root itself, then ``root / folder / layout`` for each
        folder and layout; repeated folders are kept only at their first place.
    """
    roots = ([Path(data_dir)] if data_dir is not None else [])
    roots += [Path(root) for root in SYSTEM_DATA_DIRS] if system else []
    roots += [DEFAULT_DATA_DIR]
    dirs = []
    for root in roots:
        dirs.append(root)
        for folder in folder_names:
            dirs += [root / folder / layout if layout else root / folder for layout in layouts]
    return list(dict.fromkeys(dirs))


def download_dir(name, data_dir=None):
    """The folder that missing files of dataset ``name`` are downloaded into.

    Parameters
    ----------
    name : str
        The dataset's name, its sub-folder of the cache.
    data_dir : str or Path, optional

    Returns
    -------
    Path
        ``data_dir`` if given, otherwise ``DEFAULT_DATA_DIR / name``.
    """
    return Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR / name


def data_root(data_dir=None):
    """The folder a loader with its own folder layout (such as tonic's) works in.

    Parameters
    ----------
    data_dir : str or Path, optional

    Returns
    -------
    Path
        ``data_dir`` if given, otherwise :data:`DEFAULT_DATA_DIR`.
    """
    return Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
