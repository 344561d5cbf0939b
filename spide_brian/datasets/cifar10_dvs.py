"""CIFAR10-DVS: CIFAR-10 images recorded by a DVS128 event camera, read through tonic.

``tonic.datasets.CIFAR10DVS`` lists and reads the recordings (``.aedat4`` files, which need
the ``aedat`` package); every recording is checked
(:func:`spide_brian.datasets.events.check_events`) and turned into frames
(:func:`~spide_brian.datasets.events.events_to_frames`), 30 frames of 48 x 48 in
``'reference'`` mode by default (docs/data.md D3). Per class, the first 90 % of the recordings
in natural file-name order are training samples and the rest test samples.

In ``'reference'`` mode the recordings are also mirrored ``x -> 127 - x`` and their
polarities swapped ``p -> 1 - p`` (``reference_reader``), the address convention that mode's
framing expects; the ``.aedat4`` files are taken to hold the raw sensor addresses. The mirroring
flips the frames left-right; the swap matters through the ``La`` weighting of the two
polarities (see :mod:`spide_brian.datasets.events`).
"""
from __future__ import annotations

import re

import numpy as np

from .base import DataError, Dataset, register_dataset
from .cache import data_root
from .events import TONIC_HINT, FrameSettings, check_events, events_to_frames, require_tonic

__all__ = ["CIFAR10DVS_SENSOR", "CIFAR10DVS_CLASSES", "CIFAR10DVS_URL", "CIFAR10DVS_MD5",
           "load_cifar10_dvs"]

#: Sensor size ``(width, height, polarities)`` of the DVS128 camera of CIFAR10-DVS.
CIFAR10DVS_SENSOR = (128, 128, 2)
#: Class names, in label order (also the class folders of tonic's layout).
CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                      "ship", "truck")
#: Address of the official ``CIFAR10DVS.zip``.
CIFAR10DVS_URL = "https://figshare.com/ndownloader/files/38023437"
#: MD5 of ``CIFAR10DVS.zip``.
CIFAR10DVS_MD5 = "ce3a4a0682dc0943703bd8f749a7701c"


def _natural_key(path):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def _open_cifar10_dvs(root, download):
    """tonic's dataset object under ``root``, after checking that the files are there."""
    tonic = require_tonic()
    location = root / "CIFAR10DVS"
    wanted = (f"CIFAR10DVS.zip (MD5 {CIFAR10DVS_MD5}) from {CIFAR10DVS_URL}; put it in "
              f"{location} and unzip the ten class archives there (airplane.zip ... truck.zip), "
              f"so that {location}/<class>/*.aedat4 exist next to CIFAR10DVS.zip")
    present = ((location / "CIFAR10DVS.zip").is_file()
               and sum(1 for _ in location.glob("**/*.aedat4")) >= 1000)
    if not present and not download:
        raise DataError(f"cifar10-dvs: no data under {location}; get {wanted}")
    try:
        return tonic.datasets.CIFAR10DVS(save_to=str(root))
    except Exception as error:
        raise DataError(f"cifar10-dvs: cannot open or download the dataset under {location} "
                        f"({type(error).__name__}: {error}); get {wanted}") from error


def _read_recording(dataset, index):
    """Events of recording ``index``, with read errors as :class:`DataError`."""
    path = dataset.data[index]
    try:
        events, _ = dataset[index]
    except ImportError as error:
        raise DataError(f"cifar10-dvs: reading {path} needs {error.name}: {TONIC_HINT}") from error
    except (RuntimeError, OSError, ValueError) as error:
        raise DataError(f"cifar10-dvs: cannot read {path} ({error}); the file is truncated or "
                        f"corrupt, unzip it again from CIFAR10DVS.zip") from error
    return events


@register_dataset("cifar10-dvs")
def load_cifar10_dvs(data_dir=None, settings=FrameSettings(), reference_reader=None,
                     samples_per_class=None, train_fraction=0.9, download=True):
    """CIFAR10-DVS through ``tonic.datasets.CIFAR10DVS``, framed as docs/data.md D3 states.

    Parameters
    ----------
    data_dir : str or Path, optional
        Folder holding ``CIFAR10DVS/`` (tonic's layout); the cache folder if None.
    settings : FrameSettings
        30 frames of 48 x 48 in ``'reference'`` mode by default.
    reference_reader : bool, optional
        Mirror ``x -> 127 - x`` and swap ``p -> 1 - p`` (see the module docstring); by default
        when ``settings.mode == 'reference'``.
    samples_per_class : int, optional
        Read only the first recordings of each class (all 1000 if None).
    train_fraction : float
        Per class, the first ``floor(fraction n)`` recordings (in natural file-name order) are
        training samples, the rest test samples (recordings 0-899 and 900-999 of 1000 with
        the default 0.9, as docs/data.md D3 states).
    download : bool
        Let tonic download the archive when it is missing.

    Returns
    -------
    Dataset
        Frames ``(n, 30, 2 * 48 * 48)``; the full dataset takes about 11 GB as float64.

    Raises
    ------
    DataError
        When tonic or aedat is missing, the files are not there (and ``download`` is False or
        fails), a recording is unreadable or does not fit the sensor, or a label is outside
        ``[0, 10)``.
    """
    if reference_reader is None:
        reference_reader = settings.mode == "reference"
    root = data_root(data_dir)
    dataset = _open_cifar10_dvs(root, download)
    by_class = {}
    for index, (path, target) in enumerate(zip(dataset.data, dataset.targets)):
        if not 0 <= target < len(CIFAR10DVS_CLASSES):
            raise DataError(f"cifar10-dvs: {path} has label {target}, outside [0, 10)")
        by_class.setdefault(target, []).append((_natural_key(path), index))
    splits = {"train": ([], []), "test": ([], [])}
    width = CIFAR10DVS_SENSOR[0]
    for target in sorted(by_class):
        indices = [index for _, index in sorted(by_class[target])][:samples_per_class]
        n_train = int(np.floor(train_fraction * len(indices)))
        for rank, index in enumerate(indices):
            events = check_events(_read_recording(dataset, index), CIFAR10DVS_SENSOR,
                                  dataset.data[index])
            if reference_reader:
                events = events.copy()
                events["x"] = width - 1 - events["x"]
                events["p"] = ~events["p"].astype(bool)
            split = splits["train" if rank < n_train else "test"]
            split[0].append(events_to_frames(events, CIFAR10DVS_SENSOR, settings))
            split[1].append(target)
    arrays = []
    for split in ("train", "test"):
        frames, labels = splits[split]
        shape = (0, settings.n_frames, 2 * settings.size ** 2)
        arrays += [np.stack(frames) if frames else np.zeros(shape),
                   np.array(labels, dtype=np.int64)]
    return Dataset("cifar10-dvs", *arrays, len(CIFAR10DVS_CLASSES),
                   (2, settings.size, settings.size))
