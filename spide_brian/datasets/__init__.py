"""The datasets: loading by name, the loaders, event frames and training augmentation.

Every loader returns a :class:`Dataset` of flat float64 inputs and integer labels
(docs/data.md) and is registered by name when this package is imported, so that
:func:`load_dataset` and :func:`available_datasets` know all of them:

* :mod:`~spide_brian.datasets.base`: :class:`Dataset`, :class:`DataError`, the registry and
  :func:`load_dataset`;
* :mod:`~spide_brian.datasets.cache`: the folders searched for dataset files, the download
  cache and checked downloads;
* :mod:`~spide_brian.datasets.digits`: ``digits``, scikit-learn's embedded 8 x 8 digits;
* :mod:`~spide_brian.datasets.mnist`: ``mnist`` and ``fashion-mnist`` from IDX files;
* :mod:`~spide_brian.datasets.cifar`: ``cifar10`` and ``cifar100`` from the python pickles;
* :mod:`~spide_brian.datasets.events`: event arrays and their conversion to frames;
* :mod:`~spide_brian.datasets.sensor`: a simulated event camera and ``dvs-digits``;
* :mod:`~spide_brian.datasets.cifar10_dvs`: ``cifar10-dvs`` through tonic;
* :mod:`~spide_brian.datasets.augmentation`: per-epoch crop and flip of training inputs.
"""
from . import cifar, cifar10_dvs, digits, mnist, sensor
from .augmentation import CIFAR_AUGMENTATION, RandomCropFlip, frame_augmentation  # noqa: F401
from .base import (DataError, Dataset, available_datasets, load_dataset,  # noqa: F401
                   register_dataset, registered_loaders)
from .events import EVENT_DTYPE, FrameSettings, events_to_frames  # noqa: F401
from .sensor import EventSensor  # noqa: F401

#: The modules whose import registers their loaders (all of them, on import of this package).
LOADER_MODULES = (digits, mnist, cifar, sensor, cifar10_dvs)

__all__ = ["Dataset", "DataError", "load_dataset", "available_datasets", "register_dataset",
           "registered_loaders", "CIFAR_AUGMENTATION", "RandomCropFlip", "frame_augmentation",
           "EVENT_DTYPE", "FrameSettings", "events_to_frames", "EventSensor"]
