"""An offline event source: a simulated event camera watching a static image move.

:class:`EventSensor` records a static image moved along a small saccade path
(:func:`saccade_path`), the way CIFAR10-DVS and N-MNIST were recorded from a screen: a pixel
emits an event of polarity ``p = 1`` (ON) or ``p = 0`` (OFF) each time its log intensity moves
one contrast threshold ``C`` away from the level at its previous event. :func:`events_dataset`
records every image of a dataset and turns the events into frames
(:func:`spide_brian.datasets.events.events_to_frames`) (docs/data.md D4):

* ``dvs-digits`` (registered, :func:`load_dvs_digits`): scikit-learn's embedded 8 x 8 digits,
  upsampled, on a 32 x 32 sensor, so the event path of the network runs without any download;
* :func:`load_dvs_mnist` (not registered): MNIST or Fashion-MNIST from their IDX files on a
  34 x 34 sensor, as N-MNIST.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from . import mnist
from .base import DataError, Dataset, register_dataset
from .digits import DIGITS_TRAIN_SIZE
from .events import EVENT_DTYPE, FrameSettings, events_to_frames

__all__ = ["saccade_path", "EventSensor", "events_dataset", "load_dvs_digits", "load_dvs_mnist"]


def saccade_path(n_samples, amplitude):
    """Image offsets in pixels along a closed triangle.

    Three straight saccades at constant speed through the vertices ``(0, 0)``,
    ``(-a, a/2)``, ``(0, a)`` and back to ``(0, 0)`` (``a`` = amplitude; up-right, down-right,
    left), so edges of every orientation move across the sensor.

    Parameters
    ----------
    n_samples : int
        Time samples along the path, the first at ``(0, 0)`` and the last back there.
    amplitude : float
        Side ``a`` of the triangle in pixels.

    Returns
    -------
    ndarray, shape (n_samples, 2)
        Offsets ``(dy, dx)``.
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
        """Events of ``image`` moving along the saccade path.

        The image is centred on the sensor; it must fit inside it with the saccade amplitude.

        Parameters
        ----------
        image : ndarray, shape (h, w)
            Intensities in [0, 1].
        rng : numpy.random.Generator
            Draws the threshold mismatch and the background noise.

        Returns
        -------
        ndarray
            Events of dtype :data:`~spide_brian.datasets.events.EVENT_DTYPE`, sorted by time.

        Raises
        ------
        DataError
            When the image and the saccade amplitude do not fit on the sensor.
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
        Name of the dataset.
    images_train, images_test : ndarray, shape (n, h, w)
        Intensities in [0, 1], already at sensor scale.
    y_train, y_test : ndarray
        Integer labels.
    n_classes : int
        Number of classes.
    sensor : EventSensor
        A two-polarity sensor.
    settings : FrameSettings
        How the events become frames.
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
    the ``digits`` dataset (first 1437 train, last 360 test).

    Parameters
    ----------
    data_dir : str or Path, optional
        Not used (the digits are embedded); accepted as every loader accepts it.
    sensor : EventSensor
        32 x 32 by default.
    settings : FrameSettings
        30 frames of 16 x 16 counts by default.
    scale : int
        Upsampling factor of the 8 x 8 digits.
    seed : int
        See :func:`events_dataset`.
    limit : int, optional
        Record only the first ``limit`` digits of each split; they get the same frames as in
        the full dataset (the sensor noise of a digit depends only on its split and index).

    Returns
    -------
    Dataset
        Frames ``(n, T, 2 size^2)``, 10 classes.
    """
    from sklearn.datasets import load_digits

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

    Parameters
    ----------
    data_dir : str or Path, optional
        Where the IDX files are looked for, as by
        :func:`spide_brian.datasets.mnist.load_idx_dataset`.
    n_train, n_test : int, optional
        Record only the first images of each split (all if None).
    sensor : EventSensor
        34 x 34 by default.
    settings : FrameSettings
        30 frames of 17 x 17 counts by default.
    seed : int
        See :func:`events_dataset`.
    source : spide_brian.datasets.mnist.IdxSource
        ``mnist.MNIST`` or ``mnist.FASHION_MNIST``.

    Returns
    -------
    Dataset
        Named ``dvs-<source name>``, frames ``(n, T, 2 size^2)``.
    """
    data = mnist.load_idx_dataset(source, data_dir)

    def intensities(x):
        return np.clip(x * source.std + source.mean, 0, 1).reshape(-1, 28, 28)

    return events_dataset(f"dvs-{source.name}", intensities(data.x_train[:n_train]),
                          data.y_train[:n_train], intensities(data.x_test[:n_test]),
                          data.y_test[:n_test], source.classes, sensor, settings, seed)
