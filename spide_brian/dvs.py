"""Event-camera data: CIFAR10-DVS through tonic, an offline simulated event sensor, and frames.

Events are tonic-style structured numpy arrays with fields ``t`` (microseconds), ``x``, ``y``
and ``p`` (polarity), the dtype of ``tonic.datasets.CIFAR10DVS``
(:data:`EVENT_DTYPE`). They become network input as ``T`` frames of equal event count (docs/data.md
D3): frame ``k`` of a sample holds the events with index in ``[k N_T, (k+1) N_T)``, ``N_T =
floor(N / T)``, counted per polarity and pixel, then resized to ``size x size`` and flattened in
the order ``(polarity, y, x)``. The network receives frame ``k`` at forward step ``k``
(docs/method.md M1).

Frame modes (:class:`FrameSettings`):

``'reference'``
    The reference pipeline, quirks included (docs/data.md D3): the last frame also takes the
    ``N - T N_T`` remaining events; each count frame ``c`` is turned into bytes as
    ``ToPILImage`` does with a float tensor, ``v = (255 c) mod 256`` (so one event gives 255,
    two give 254, 256 events give 0); the two polarity planes form one Pillow ``LA`` image,
    which Pillow resizes bilinearly through premultiplied ``La`` (the polarity-0 plane is
    weighted by the presence of polarity-1 events), and the result is divided by 255. Frames
    are therefore close to binary event-presence maps in ``[0, 1]``.
``'counts'``
    Clean counts with tonic transforms: ``Downsample`` of the event coordinates to the
    ``size x size`` grid, then ``ToFrame(n_event_bins=T)`` (which leaves out the ``N mod T``
    remaining events).
``'binary'``
    As ``'counts'``, then 1 where a pixel has at least one event.

For CIFAR10-DVS the reference also mirrors ``x -> 127 - x`` and swaps ``p -> 1 - p`` when it reads
the original ``.aedat`` files (docs/data.md D3); :func:`load_cifar10_dvs` does the same by default
in ``'reference'`` mode (``reference_reader``). Whether tonic's ``.aedat4`` conversion of the
recordings kept the raw addresses has not been checked; mirroring and swapping matter for the
numbers only through the ``La`` weighting above.

The offline source (:class:`EventSensor`) records a static image moved along a small saccade
path, as CIFAR10-DVS and N-MNIST were recorded: a pixel emits an event of polarity ``p = 1`` (ON)
or ``p = 0`` (OFF) each time its log intensity moves one contrast threshold ``C`` away from the
level at its previous event.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from brian2.utils.logger import get_logger
from scipy import ndimage

from . import mnist
from .dataset import DataError, Dataset, register_dataset

__all__ = ["EVENT_DTYPE", "CIFAR10DVS_SENSOR", "FRAME_MODES", "FrameSettings", "EventSensor",
           "check_events", "events_to_frames", "saccade_path", "events_dataset",
           "load_dvs_digits", "load_dvs_mnist", "load_cifar10_dvs", "frame_augmentation"]

logger = get_logger(__name__)

#: Event dtype of ``tonic.datasets.CIFAR10DVS`` (t in microseconds).
EVENT_DTYPE = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])
#: Sensor size ``(width, height, polarities)`` of the DVS128 camera of CIFAR10-DVS.
CIFAR10DVS_SENSOR = (128, 128, 2)
FRAME_MODES = ("reference", "counts", "binary")
CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                      "ship", "truck")
CIFAR10DVS_URL = "https://figshare.com/ndownloader/files/38023437"
CIFAR10DVS_MD5 = "ce3a4a0682dc0943703bd8f749a7701c"
_TONIC_HINT = "pip install 'spide-brian[dvs]' (tonic, and aedat to read CIFAR10-DVS files)"


def _tonic():
    try:
        import tonic
    except ImportError as error:
        raise DataError(f"event data needs tonic: {_TONIC_HINT}") from error
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

    tonic's event-bin slicer leaves the remaining events out, the reference does not, hence
    this one numpy accumulation.
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
    """Counts ``(T, 2, H, W)`` -> ``(T, 2, size, size)`` as ToPILImage, Resize, ToTensor do.

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
    """
    check_events(events, sensor_size)
    width, height, polarities = sensor_size
    if settings.mode == "reference":
        if polarities != 2:
            raise DataError("'reference' frames need a two-polarity sensor (a Pillow LA image)")
        counts = _reference_counts(events, sensor_size, settings.n_frames)
        frames = _reference_resize(counts, settings.size)
    else:
        transforms = _tonic().transforms
        target = (settings.size, settings.size, polarities)
        pipeline = transforms.Compose([
            transforms.Downsample(sensor_size=sensor_size, target_size=target[:2]),
            transforms.ToFrame(sensor_size=target, n_event_bins=settings.n_frames)])
        frames = pipeline(events).astype(np.float64)
        if settings.mode == "binary":
            frames = (frames > 0).astype(np.float64)
    return frames.reshape(settings.n_frames, -1)


def saccade_path(n_samples, amplitude):
    """Image offsets ``(n_samples, 2)`` (dy, dx) in pixels along a closed triangle.

    Three straight saccades at constant speed through the vertices ``(0, 0)``,
    ``(-a, a/2)``, ``(0, a)`` and back to ``(0, 0)`` (``a`` = amplitude; up-right, down-right,
    left), so edges of every orientation move across the sensor.
    """
    vertices = np.array([[0.0, 0.0], [-amplitude, amplitude / 2], [0.0, amplitude],
                         [0.0, 0.0]])
    position = np.linspace(0.0, 3.0, n_samples)
    segment = np.minimum(position.astype(int), 2)
    fraction = (position - segment)[:, None]
    return vertices[segment] * (1 - fraction) + vertices[segment + 1] * fraction


@dataclass(frozen=True)
class EventSensor:
    """A simulated event camera looking at a static image that moves along a saccade path.

    The scene intensity at time sample ``k`` is the image shifted by the path offset
    (bilinear interpolation), on a dim background:

    .. math:: I_k(y, x) = b + (1 - b)\\, \\mathrm{img}(y - d_y(k),\\ x - d_x(k)),
              \\qquad L_k = \\ln I_k .

    Each pixel keeps the level :math:`r` of its last event (initially :math:`L_0`) and a
    threshold :math:`C_{yx} = C (1 + \\epsilon_{yx})`, :math:`\\epsilon \\sim
    \\mathcal N(0, \\sigma_C^2)`. At sample ``k`` it emits :math:`n = \\lfloor |L_k - r| /
    C_{yx} \\rfloor` events of polarity ``p = [L_k > r]``, spread evenly over the interval
    since the previous sample, and moves :math:`r` by :math:`\\pm n C_{yx}`. Background noise
    adds a Poisson number of events (rate ``noise_rate`` per pixel and second) at uniform
    times, positions and polarities.

    Parameters
    ----------
    sensor_size : tuple
        ``(width, height, 2)``.
    threshold : float
        Contrast threshold ``C`` on the log intensity.
    threshold_mismatch : float
        Relative spread ``sigma_C`` of the per-pixel thresholds.
    noise_rate : float
        Background events per pixel per second.
    duration_us : int
        Length of one recording in microseconds.
    samples : int
        Time samples along the path.
    amplitude : float
        Saccade amplitude in pixels.
    background : float
        Intensity ``b`` of black image pixels (keeps the logarithm finite).
    """

    sensor_size: tuple = (32, 32, 2)
    threshold: float = 0.2
    threshold_mismatch: float = 0.0
    noise_rate: float = 0.0
    duration_us: int = 300_000
    samples: int = 90
    amplitude: float = 3.0
    background: float = 0.1

    def record(self, image, rng):
        """Events (:data:`EVENT_DTYPE`, sorted by time) of ``image`` (values in [0, 1]).

        The image is centred on the sensor; it must fit inside it with the saccade amplitude.
        """
        width, height, _ = self.sensor_size
        image = np.asarray(image, dtype=np.float64)
        margin = int(np.ceil(self.amplitude))
        if image.shape[0] + margin > height or image.shape[1] + margin > width:
            raise DataError(f"a {image.shape} image moving {self.amplitude} pixels does not fit "
                            f"a {width} x {height} sensor")
        canvas = np.zeros((height, width))
        top = (height - image.shape[0] + margin) // 2
        left = (width - image.shape[1] - margin) // 2
        canvas[top:top + image.shape[0], left:left + image.shape[1]] = image
        offsets = saccade_path(self.samples, self.amplitude)
        rows, columns = np.mgrid[0:height, 0:width]
        coordinates = np.stack([rows[None] - offsets[:, 0, None, None],
                                columns[None] - offsets[:, 1, None, None]])
        scene = ndimage.map_coordinates(canvas, coordinates, order=1, cval=0.0)
        log_intensity = np.log(self.background + (1 - self.background) * scene)
        thresholds = self.threshold * (1 + self.threshold_mismatch * rng.standard_normal(
            (height, width)))
        thresholds = np.maximum(thresholds, 1e-3 * self.threshold)
        events = [self._crossings(log_intensity, thresholds), self._noise(rng)]
        events = np.concatenate(events)
        return events[np.argsort(events["t"], kind="stable")]

    def _crossings(self, log_intensity, thresholds):
        level = log_intensity[0].copy()
        interval = self.duration_us / (self.samples - 1)
        chunks = []
        for k in range(1, self.samples):
            change = log_intensity[k] - level
            count = np.floor(np.abs(change) / thresholds).astype(np.int64)
            level += np.sign(change) * count * thresholds
            y, x = np.nonzero(count)
            if len(y) == 0:
                continue
            n = count[y, x]
            repeat = np.repeat(np.arange(len(y)), n)
            rank = np.arange(len(repeat)) - np.repeat(np.cumsum(n) - n, n)
            chunk = np.zeros(len(repeat), EVENT_DTYPE)
            chunk["t"] = np.round((k - 1 + (rank + 1) / (n[repeat] + 1)) * interval)
            chunk["x"], chunk["y"] = x[repeat], y[repeat]
            chunk["p"] = change[y, x][repeat] > 0
            chunks.append(chunk)
        return np.concatenate(chunks) if chunks else np.zeros(0, EVENT_DTYPE)

    def _noise(self, rng):
        width, height, _ = self.sensor_size
        n = rng.poisson(self.noise_rate * width * height * self.duration_us * 1e-6)
        noise = np.zeros(n, EVENT_DTYPE)
        noise["t"] = rng.integers(0, self.duration_us + 1, n)
        noise["x"], noise["y"] = rng.integers(0, width, n), rng.integers(0, height, n)
        noise["p"] = rng.random(n) < 0.5
        return noise


def events_dataset(name, images_train, y_train, images_test, y_test, n_classes,
                   sensor=EventSensor(), settings=FrameSettings(size=16, mode="counts"), seed=0):
    """Record every image with ``sensor`` and turn the events into frames.

    Parameters
    ----------
    name : str
    images_train, images_test : ndarray, shape (n, h, w)
        Intensities in [0, 1], already at sensor scale.
    y_train, y_test : ndarray
    n_classes : int
    sensor : EventSensor
    settings : FrameSettings
    seed : int
        Seeds the sensor noise and threshold mismatch (sample ``i`` of split ``s`` uses the
        generator ``default_rng([seed, s, i])``).

    Returns
    -------
    Dataset
        Frames ``(n, T, 2 size^2)``, ``input_shape`` ``(2, size, size)``.
    """
    splits = []
    for index, images in enumerate((images_train, images_test)):
        frames = np.empty((len(images), settings.n_frames, 2 * settings.size ** 2))
        for i, image in enumerate(images):
            events = sensor.record(image, np.random.default_rng([seed, index, i]))
            frames[i] = events_to_frames(events, sensor.sensor_size, settings)
        splits.append(frames)
    return Dataset(name, splits[0], np.asarray(y_train), splits[1], np.asarray(y_test),
                   n_classes, (2, settings.size, settings.size))


@register_dataset("dvs-digits")
def load_dvs_digits(data_dir=None, sensor=EventSensor(),
                    settings=FrameSettings(size=16, mode="counts"), scale=3, seed=0, limit=None):
    """scikit-learn's 8 x 8 digits seen by a simulated event sensor (no download).

    Each digit (pixels / 16) is upsampled ``scale`` times (bilinear), recorded by ``sensor``
    along a saccade path and binned into ``settings.n_frames`` frames; the split is the one of
    the ``digits`` dataset (first 1437 train, last 360 test). ``data_dir`` is not used.
    ``limit`` records only the first ``limit`` digits of each split (the same frames as in
    the full dataset: the sensor noise of a digit depends only on its split and index).
    """
    from sklearn.datasets import load_digits

    from .dataset import DIGITS_TRAIN_SIZE

    digits = load_digits()
    images = np.clip(ndimage.zoom(digits.images / 16.0, (1, scale, scale), order=1), 0, 1)
    split = DIGITS_TRAIN_SIZE
    train, test = slice(0, split), slice(split, None)
    if limit is not None:
        train, test = slice(0, min(limit, split)), slice(split, split + limit)
    return events_dataset("dvs-digits", images[train], digits.target[train], images[test],
                          digits.target[test], 10, sensor, settings, seed)


def load_dvs_mnist(data_dir=None, n_train=None, n_test=None,
                   sensor=EventSensor(sensor_size=(34, 34, 2)),
                   settings=FrameSettings(size=17, mode="counts"), seed=0, source=mnist.MNIST):
    """MNIST (or Fashion-MNIST, ``source``) seen by the simulated sensor, as N-MNIST: 34 x 34.

    The IDX files are found as by :func:`spide_brian.mnist.load_idx_dataset`; the first
    ``n_train`` / ``n_test`` images of each split are recorded (all if None).
    """
    data = mnist.load_idx_dataset(source, data_dir)

    def intensities(x):
        return np.clip(x * source.std + source.mean, 0, 1).reshape(-1, 28, 28)

    return events_dataset(f"dvs-{source.name}", intensities(data.x_train[:n_train]),
                          data.y_train[:n_train], intensities(data.x_test[:n_test]),
                          data.y_test[:n_test], source.classes, sensor, settings, seed)


def _natural_key(path):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def _open_cifar10_dvs(root, download):
    tonic = _tonic()
    location = Path(root) / "CIFAR10DVS"
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
    path = dataset.data[index]
    try:
        events, _ = dataset[index]
    except ImportError as error:
        raise DataError(f"cifar10-dvs: reading {path} needs {error.name}: {_TONIC_HINT}") from error
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
        Mirror ``x -> 127 - x`` and swap ``p -> 1 - p`` as the reference reader does; by default
        when ``settings.mode == 'reference'``.
    samples_per_class : int, optional
        Read only the first recordings of each class (all 1000 if None).
    train_fraction : float
        Per class, the first ``floor(fraction n)`` recordings (in natural file-name order) are
        training samples, the rest test samples (recordings 0-899 and 900-999 in the reference).
    download : bool
        Let tonic download the archive when it is missing.

    Returns
    -------
    Dataset
        Frames ``(n, 30, 2 * 48 * 48)``; the full dataset takes about 11 GB as float64.
    """
    if reference_reader is None:
        reference_reader = settings.mode == "reference"
    root = Path(data_dir) if data_dir is not None else mnist.DEFAULT_DATA_DIR
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


def frame_augmentation(size=48, padding=4):
    """The reference DVS training augmentation: ``Padding(4)`` then ``RandomCrop(48)``.

    One crop per sample for all its frames, zero border, no flip (docs/data.md D3). Returns a
    callable ``augment(x, rng)`` for frames ``(n, T, 2 size^2)``.
    """
    from .cifar import RandomCropFlip

    return RandomCropFlip((2, size, size), padding, False, (0.0,))
