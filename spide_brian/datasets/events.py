"""Event streams and how they become network frames (docs/data.md D3).

Events are tonic-style structured numpy arrays with fields ``t`` (microseconds), ``x``, ``y``
and ``p`` (polarity), the dtype of ``tonic.datasets.CIFAR10DVS`` (:data:`EVENT_DTYPE`); a
sensor is described by its size ``(width, height, polarities)``. Events become network input
as ``T`` frames of equal event count: frame ``k`` of a sample holds the events with index in
``[k N_T, (k+1) N_T)``, ``N_T = floor(N / T)``, counted per polarity and pixel, then resized to
``size x size`` and flattened in the order ``(polarity, y, x)``. The network receives frame
``k`` at forward step ``k`` (docs/method.md M1).

Frame modes (:class:`FrameSettings`):

``'reference'``
    The framing of docs/data.md D3, quirks included: the last frame also takes the
    ``N - T N_T`` remaining events; each count frame ``c`` is turned into bytes as
    torchvision's ``ToPILImage`` does with a float tensor, ``v = (255 c) mod 256`` (so one
    event gives 255, two give 254, 256 events give 0); the two polarity planes form one Pillow
    ``LA`` image, which Pillow resizes bilinearly through premultiplied ``La`` (the
    polarity-0 plane is weighted by the presence of polarity-1 events), and the result is
    divided by 255. Frames are therefore close to binary event-presence maps in ``[0, 1]``.
``'counts'``
    Clean counts with tonic transforms: ``Downsample`` of the event coordinates to the
    ``size x size`` grid, then ``ToFrame(n_event_bins=T)`` (which leaves out the ``N mod T``
    remaining events).
``'binary'``
    As ``'counts'``, then 1 where a pixel has at least one event.

The ``'counts'`` and ``'binary'`` modes need tonic (:func:`require_tonic`); ``'reference'``
needs Pillow only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import DataError

__all__ = ["EVENT_DTYPE", "FRAME_MODES", "TONIC_HINT", "require_tonic", "FrameSettings",
           "check_events", "events_to_frames"]

#: Event dtype of ``tonic.datasets.CIFAR10DVS`` (t in microseconds).
EVENT_DTYPE = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])
#: The frame modes of :class:`FrameSettings` (see the module docstring).
FRAME_MODES = ("reference", "counts", "binary")
#: How to install the optional event-data packages.
TONIC_HINT = "pip install 'spide-brian[dvs]' (tonic, and aedat to read CIFAR10-DVS files)"


def require_tonic():
    """The ``tonic`` package, imported on first use.

    Returns
    -------
    module
        ``tonic``.

    Raises
    ------
    DataError
        When tonic is not installed; the message says how to install it.
    """
    try:
        import tonic
    except ImportError as error:
        raise DataError(f"event data needs tonic: {TONIC_HINT}") from error
    return tonic


@dataclass(frozen=True)
class FrameSettings:
    """How events become network frames.

    Parameters
    ----------
    n_frames : int
        Frames ``T`` per sample (one per forward step, so equal to ``SPIDEConfig.time_step``).
    size : int
        Frames are ``size x size`` per polarity.
    mode : {'reference', 'counts', 'binary'}
        See the module docstring.

    Raises
    ------
    DataError
        For an unknown mode, or ``n_frames`` or ``size`` below 1.
    """

    n_frames: int = 30
    size: int = 48
    mode: str = "reference"

    def __post_init__(self):
        if self.mode not in FRAME_MODES:
            raise DataError(f"frame mode must be one of {', '.join(FRAME_MODES)}, "
                            f"got {self.mode!r}")
        if self.n_frames < 1 or self.size < 1:
            raise DataError(f"n_frames and size must be >= 1, got {self.n_frames}, {self.size}")


def check_events(events, sensor_size, origin="events"):
    """Check that ``events`` is a tonic-style event array that fits ``sensor_size``.

    Parameters
    ----------
    events : ndarray
        Structured array with integer fields ``t``, ``x``, ``y`` and an integer or boolean
        field ``p``.
    sensor_size : tuple
        ``(width, height, polarities)``.
    origin : str
        Named in error messages.

    Returns
    -------
    ndarray
        ``events`` itself, unchanged.

    Raises
    ------
    DataError
        For a plain array, a missing or non-integer field, or coordinates or polarities outside
        the sensor.
    """
    fields = getattr(events.dtype, "fields", None) or {}
    missing = [name for name in ("t", "x", "y", "p") if name not in fields]
    if missing:
        raise DataError(f"{origin}: events need the fields t, x, y, p (tonic's structured "
                        f"arrays); dtype {events.dtype} lacks {', '.join(missing)}")
    for name in ("t", "x", "y", "p"):
        kind = fields[name][0].kind
        if kind not in "iub" or (kind == "b" and name != "p"):
            raise DataError(f"{origin}: event field {name!r} must be an integer"
                            f"{' or boolean' if name == 'p' else ''}, got {fields[name][0]}")
    width, height, polarities = sensor_size
    for name, bound in (("x", width), ("y", height), ("p", polarities)):
        values = events[name].astype(np.int64)
        if len(values) and (values.min() < 0 or values.max() >= bound):
            raise DataError(f"{origin}: event {name} ranges over [{values.min()}, "
                            f"{values.max()}], outside the sensor's [0, {bound})")
    return events


def _reference_counts(events, sensor_size, n_frames):
    """Counts ``(T, P, H, W)`` with ``floor(N/T)`` events per frame, the rest in the last one.

    tonic's event-bin slicer leaves the remaining events out; the ``'reference'`` mode keeps
    them in the last frame, hence this numpy accumulation.
    """
    width, height, polarities = sensor_size
    per_frame = len(events) // n_frames
    index = np.arange(len(events))
    frame = (np.minimum(index // per_frame, n_frames - 1) if per_frame
             else np.full(len(events), n_frames - 1))
    shape = (n_frames, polarities, height, width)
    flat = np.ravel_multi_index((frame, events["p"].astype(np.int64), events["y"].astype(np.int64),
                                 events["x"].astype(np.int64)), shape)
    return np.bincount(flat, minlength=np.prod(shape)).reshape(shape)


def _reference_resize(counts, size):
    """Counts ``(T, 2, H, W)`` -> ``(T, 2, size, size)`` as torchvision's ToPILImage, Resize
    and ToTensor do (see the module docstring).

    ``(255 c) mod 256`` equals ``(-c) mod 256``, which a cast of ``-c`` to uint8 gives.
    """
    from PIL import Image

    values = np.ascontiguousarray((-counts).astype(np.uint8).transpose(0, 2, 3, 1))
    frames = np.empty((len(counts), size, size, 2), np.uint8)
    for k, frame in enumerate(values):
        frames[k] = Image.fromarray(frame).resize((size, size), Image.Resampling.BILINEAR)
    return frames.transpose(0, 3, 1, 2) / 255.0


def events_to_frames(events, sensor_size, settings=FrameSettings()):
    """Frames ``(T, P * size * size)`` float64 of one event array (see the module docstring).

    Parameters
    ----------
    events : ndarray
        tonic-style structured array (checked with :func:`check_events`).
    sensor_size : tuple
        ``(width, height, polarities)``; ``'reference'`` mode needs 2 polarities.
    settings : FrameSettings

    Returns
    -------
    ndarray, shape (settings.n_frames, polarities * settings.size ** 2)

    Raises
    ------
    DataError
        For events that :func:`check_events` refuses, a ``'reference'`` frame of a sensor
        without two polarities, or a missing tonic in the other modes.
    """
    check_events(events, sensor_size)
    width, height, polarities = sensor_size
    if settings.mode == "reference":
        if polarities != 2:
            raise DataError("'reference' frames need a two-polarity sensor (a Pillow LA image)")
        counts = _reference_counts(events, sensor_size, settings.n_frames)
        frames = _reference_resize(counts, settings.size)
    else:
        transforms = require_tonic().transforms
        target = (settings.size, settings.size, polarities)
        pipeline = transforms.Compose([
            transforms.Downsample(sensor_size=sensor_size, target_size=target[:2]),
            transforms.ToFrame(sensor_size=target, n_event_bins=settings.n_frames)])
        frames = pipeline(events).astype(np.float64)
        if settings.mode == "binary":
            frames = (frames > 0).astype(np.float64)
    return frames.reshape(settings.n_frames, -1)
