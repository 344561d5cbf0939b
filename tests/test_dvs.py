"""Event data: the simulated sensor, frames (reference quirks and tonic transforms), CIFAR10-DVS
read by tonic from fake AEDAT4 files, and training on the offline event stream."""
import struct

import numpy as np
import pytest

from spide_brian.config import SPIDEConfig
from spide_brian.datasets import DataError
from spide_brian.datasets.augmentation import frame_augmentation
from spide_brian.datasets.cifar10_dvs import (CIFAR10DVS_CLASSES, CIFAR10DVS_SENSOR,
                                              load_cifar10_dvs)
from spide_brian.datasets.events import (EVENT_DTYPE, FrameSettings, _reference_counts,
                                         _reference_resize, check_events, events_to_frames)
from spide_brian.datasets.sensor import EventSensor, events_dataset, load_dvs_mnist, saccade_path
from spide_brian.training import train


def make_events(x, y, p, t=None):
    events = np.zeros(len(x), EVENT_DTYPE)
    events["x"], events["y"], events["p"] = x, y, p
    events["t"] = np.arange(len(x)) * 10 if t is None else t
    return events


def square(size=12, side=6):
    image = np.zeros((size, size))
    start = (size - side) // 2
    image[start:start + side, start:start + side] = 1.0
    return image


# the simulated sensor -------------------------------------------------------------------------

def test_sensor_emits_sorted_tonic_events_inside_the_sensor():
    sensor = EventSensor(sensor_size=(20, 20, 2), samples=30, amplitude=3.0)
    events = sensor.record(square(), np.random.default_rng(0))
    assert events.dtype == EVENT_DTYPE
    assert np.all(np.diff(events["t"].astype(np.int64)) >= 0)
    assert events["t"].max() <= sensor.duration_us
    check_events(events, sensor.sensor_size)
    assert 0.3 < events["p"].mean() < 0.7
    again = sensor.record(square(), np.random.default_rng(1))
    np.testing.assert_array_equal(events, again)


def test_sensor_event_count_follows_the_log_contrast():
    """One edge pixel crossing from black to white emits floor(ln(1/b) / C) ON events."""
    sensor = EventSensor(sensor_size=(20, 20, 2), samples=30, threshold=0.2, background=0.1)
    events = sensor.record(square(), np.random.default_rng(0))
    per_pixel = np.zeros((20, 20, 2), int)
    np.add.at(per_pixel, (events["x"], events["y"], events["p"].astype(int)), 1)
    assert per_pixel.max() <= np.ceil(np.log(1 / 0.1) / 0.2) * 2
    assert per_pixel[..., 1].max() >= np.floor(np.log(1 / 0.1) / 0.2)
    still = EventSensor(sensor_size=(20, 20, 2), samples=30, amplitude=0.0)
    assert len(still.record(square(), np.random.default_rng(0))) == 0


def test_sensor_noise_and_mismatch():
    sensor = EventSensor(sensor_size=(20, 20, 2), amplitude=0.0, noise_rate=50.0)
    events = sensor.record(square(), np.random.default_rng(0))
    expected = 50.0 * 400 * sensor.duration_us * 1e-6
    assert abs(len(events) - expected) < 5 * np.sqrt(expected)
    assert set(np.unique(events["p"])) == {False, True}
    base = EventSensor(sensor_size=(20, 20, 2), samples=30)
    mismatched = EventSensor(sensor_size=(20, 20, 2), samples=30, threshold_mismatch=0.3)
    assert len(mismatched.record(square(), np.random.default_rng(0))) != len(
        base.record(square(), np.random.default_rng(0)))
    with pytest.raises(DataError, match="does not fit"):
        base.record(np.zeros((19, 19)), np.random.default_rng(0))


def test_saccade_path_is_a_closed_triangle():
    path = saccade_path(31, 3.0)
    np.testing.assert_allclose(path[[0, 10, 20, 30]], [[0, 0], [-3, 1.5], [0, 3], [0, 0]])


def test_mnist_seen_by_the_sensor(tmp_path, monkeypatch):
    pytest.importorskip("tonic")
    from spide_brian.datasets import cache

    monkeypatch.setattr(cache, "SYSTEM_DATA_DIRS", ())
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 5), ("t10k", 3)):
        for kind, shape in (("images-idx3", (n, 28, 28)), ("labels-idx1", (n,))):
            header = bytes([0, 0, 8, len(shape)]) + np.array(shape, ">u4").tobytes()
            values = rng.integers(0, 256 if len(shape) > 1 else 10, shape, dtype=np.uint8)
            (tmp_path / f"{prefix}-{kind}-ubyte").write_bytes(header + values.tobytes())
    data = load_dvs_mnist(tmp_path, n_train=2, settings=FrameSettings(5, 17, "binary"))
    assert data.x_train.shape == (2, 5, 2 * 17 * 17) and data.x_test.shape == (3, 5, 578)
    assert data.name == "dvs-mnist" and data.x_train.max() == 1.0


# frames -------------------------------------------------------------------------------------

def test_event_checks_name_the_problem():
    sensor = (4, 4, 2)
    with pytest.raises(DataError, match="lacks p"):
        check_events(np.zeros(3, [("t", "<u8"), ("x", "<u2"), ("y", "<u2")]), sensor)
    with pytest.raises(DataError, match="'x' must be an integer"):
        check_events(np.zeros(3, [("t", "<u8"), ("x", "<f4"), ("y", "<u2"), ("p", "?")]),
                     sensor)
    with pytest.raises(DataError, match="lacks t, x, y, p"):
        check_events(np.zeros((3, 4)), sensor)
    with pytest.raises(DataError, match=r"event y ranges over \[0, 4\]"):
        check_events(make_events([0, 1], [0, 4], [0, 1]), sensor)
    nmnist_like = np.zeros(2, [("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
    assert len(check_events(nmnist_like, sensor)) == 2


def test_reference_frames_split_by_event_count_with_the_remainder_last():
    events = make_events(np.arange(11) % 4, np.zeros(11, int), np.ones(11, int))
    counts = _reference_counts(events, (4, 4, 2), 3)
    np.testing.assert_array_equal(counts.sum(axis=(1, 2, 3)), [3, 3, 5])
    assert counts[0, 1, 0, 0] == 1 and counts[2, 1, 0, 2] == 2
    few = _reference_counts(events[:2], (4, 4, 2), 3)
    np.testing.assert_array_equal(few.sum(axis=(1, 2, 3)), [0, 0, 2])


def test_reference_quirks_wrap_counts_and_weight_by_the_other_polarity():
    """ToPILImage wraps 255 c into a byte; Pillow resizes LA as premultiplied La."""
    counts = np.zeros((3, 2, 8, 8), np.int64)
    counts[0, 0] = 1                          # polarity 0 only: alpha 0 hides it
    counts[1, 0], counts[1, 1] = 2, 1         # 2 events -> 254, 1 -> 255
    counts[2, 0], counts[2, 1] = 256, 257     # wraps to 0 and 255
    frames = _reference_resize(counts, 4)
    np.testing.assert_array_equal(frames[0], 0.0)
    np.testing.assert_allclose(frames[1, 0], 254 / 255, atol=1 / 255)
    np.testing.assert_allclose(frames[1, 1], 1.0)
    np.testing.assert_allclose(frames[2], [np.zeros((4, 4)), np.ones((4, 4))])


def test_reference_frames_shape_and_range():
    rng = np.random.default_rng(0)
    events = make_events(rng.integers(0, 128, 3000), rng.integers(0, 128, 3000),
                         rng.integers(0, 2, 3000))
    frames = events_to_frames(events, CIFAR10DVS_SENSOR, FrameSettings())
    assert frames.shape == (30, 2 * 48 * 48) and frames.dtype == np.float64
    assert 0.0 <= frames.min() and frames.max() <= 1.0 and frames.max() > 0.5


def test_tonic_frames_count_events_on_the_downsampled_grid():
    pytest.importorskip("tonic")
    events = make_events([0, 1, 2, 3, 0, 3, 3, 3], [0, 0, 3, 3, 1, 1, 2, 2],
                         [1, 0, 1, 1, 0, 0, 1, 1])
    settings = FrameSettings(n_frames=2, size=2, mode="counts")
    frames = events_to_frames(events, (4, 4, 2), settings).reshape(2, 2, 2, 2)
    expected = np.zeros((2, 2, 2, 2))
    expected[0, 1, 0, 0], expected[0, 0, 0, 0], expected[0, 1, 1, 1] = 1, 1, 2
    expected[1, 0, 0, 0], expected[1, 0, 0, 1], expected[1, 1, 1, 1] = 1, 1, 2
    np.testing.assert_array_equal(frames, expected)
    binary = events_to_frames(events, (4, 4, 2), settings.__class__(2, 2, "binary"))
    np.testing.assert_array_equal(binary, (expected > 0).reshape(2, -1))
    with pytest.raises(DataError, match="frame mode"):
        FrameSettings(mode="voxels")


# CIFAR10-DVS through tonic, from fake AEDAT4 files --------------------------------------------

EVENT_STRUCT = np.dtype({"names": ["t", "x", "y", "on"], "formats": ["<i8", "<i2", "<i2", "u1"],
                         "offsets": [0, 8, 10, 12], "itemsize": 16})


def aedat4_events_packet(events):
    """A size-prefixed flatbuffer ``EventPacket`` (file identifier EVTS) of 16-byte events.

    Layout: size prefix, root offset, "EVTS", vtable (6 bytes + 2 padding), table (vtable
    offset, vector offset), vector length, then the 8-aligned elements.
    """
    elements = np.zeros(len(events), EVENT_STRUCT)
    for field, source in (("t", "t"), ("x", "x"), ("y", "y"), ("on", "p")):
        elements[field] = events[source]
    body = (struct.pack("<I4sHHH2xiII", 16, b"EVTS", 6, 8, 4, 8, 4, len(elements))
            + elements.tobytes())
    return struct.pack("<I", len(body)) + body


def aedat4_header(description):
    """An ``Ioheader`` flatbuffer holding only the XML description (default compression none)."""
    text = description.encode() + b"\0"
    text += b"\0" * (-len(text) % 4)
    return struct.pack("<I4sHHHHH2xiII", 20, b"IOHE", 10, 8, 0, 0, 4, 12, 4,
                       len(description)) + text


def write_aedat4(path, events, width=128, height=128):
    """An uncompressed AEDAT 4.0 file with one event stream and one packet."""
    stream = "/mainloop/Recorder/outInfo/0/"
    description = (
        f'<dv version="2.0"><node name="outInfo" path="/mainloop/Recorder/outInfo/">'
        f'<node name="0" path="{stream}">'
        f'<attr key="compression" type="string">NONE</attr>'
        f'<attr key="typeIdentifier" type="string">EVTS</attr>'
        f'<node name="info" path="{stream}info/">'
        f'<attr key="sizeX" type="int">{width}</attr><attr key="sizeY" type="int">{height}</attr>'
        f'</node></node></node></dv>')
    header = aedat4_header(description)
    packet = aedat4_events_packet(events)
    path.write_bytes(b"#!AER-DAT4.0\r\n" + struct.pack("<I", len(header)) + header
                     + struct.pack("<II", 0, len(packet)) + packet)


@pytest.fixture
def fake_cifar10_dvs(tmp_path):
    """tonic's CIFAR10DVS layout: the zip (a placeholder) and 100 tiny recordings per class.

    Recording ``i`` of class ``c`` has ``40 + i`` events in the column ``x = c``.
    """
    pytest.importorskip("tonic")
    pytest.importorskip("aedat")
    location = tmp_path / "CIFAR10DVS"
    location.mkdir()
    (location / "CIFAR10DVS.zip").write_bytes(b"placeholder")
    for label, name in enumerate(CIFAR10DVS_CLASSES):
        (location / name).mkdir()
        for i in range(100):
            n = 40 + i
            events = make_events(np.full(n, label), np.arange(n) % 128, np.arange(n) % 2,
                                 t=np.arange(n) * 100)
            write_aedat4(location / name / f"cifar10_{name}_{i}.aedat4", events)
    return tmp_path


def test_cifar10_dvs_through_tonic(fake_cifar10_dvs):
    data = load_cifar10_dvs(fake_cifar10_dvs, samples_per_class=10, download=False)
    assert data.x_train.shape == (90, 30, 2 * 48 * 48) and data.x_test.shape == (10, 30, 4608)
    assert data.input_shape == (2, 48, 48) and data.frames == 30
    np.testing.assert_array_equal(data.y_train, np.repeat(np.arange(10), 9))
    np.testing.assert_array_equal(data.y_test, np.arange(10))
    # natural file order: the test sample of each class is recording 9 (49 events, not 10's 50)
    counts = load_cifar10_dvs(fake_cifar10_dvs, FrameSettings(mode="counts"),
                              samples_per_class=10, download=False)
    np.testing.assert_array_equal(counts.x_test.sum(axis=(1, 2)), np.full(10, 30 * (49 // 30)))
    # reference reader: x -> 127 - x, so class c lights column 127 - c, resized 128 -> 48
    frame = data.x_train[9].reshape(30, 2, 48, 48).sum(axis=(0, 1, 2))
    assert frame.argmax() >= 44 and frame[:40].sum() == 0
    clean = load_cifar10_dvs(fake_cifar10_dvs, samples_per_class=2, download=False,
                             reference_reader=False)
    assert clean.y_train[1] == 1
    assert clean.x_train[1].reshape(30, 2, 48, 48).sum(axis=(0, 1, 2))[:4].sum() > 0


def test_cifar10_dvs_missing_files(tmp_path):
    pytest.importorskip("tonic")
    with pytest.raises(DataError, match=r"CIFAR10DVS\.zip \(MD5 ce3a4a.*figshare.*put it in "
                       + str(tmp_path / "CIFAR10DVS")):
        load_cifar10_dvs(tmp_path, download=False)


def test_cifar10_dvs_corrupt_recording(fake_cifar10_dvs):
    path = fake_cifar10_dvs / "CIFAR10DVS" / "airplane" / "cifar10_airplane_0.aedat4"
    path.write_bytes(b"#!AER-DAT2.0\r\n garbage")
    with pytest.raises(DataError, match=r"cifar10_airplane_0\.aedat4 \(.*magic number"):
        load_cifar10_dvs(fake_cifar10_dvs, samples_per_class=2, download=False)


def test_frame_augmentation_shares_the_crop_across_frames(rng):
    frames = rng.random((5, 30, 2 * 48 * 48))
    out = frame_augmentation()(frames, np.random.default_rng(0)).reshape(5, 30, 2, 48, 48)
    dy, dx = np.random.default_rng(0).integers(0, 9, (2, 5))
    source = np.pad(frames.reshape(5, 30, 2, 48, 48), ((0, 0),) * 3 + ((4, 4),) * 2)
    for i in range(5):
        np.testing.assert_array_equal(out[i], source[i, :, :, dy[i]:dy[i] + 48,
                                                     dx[i]:dx[i] + 48])


# end to end -----------------------------------------------------------------------------------

def test_offline_event_digits_train_with_the_reference():
    """Digits -> sensor events -> tonic frames -> one frame per forward step -> SPIDE."""
    pytest.importorskip("tonic")
    from sklearn.datasets import load_digits
    from scipy import ndimage

    digits = load_digits()
    images = np.clip(ndimage.zoom(digits.images[:300] / 16, (1, 2, 2), order=1), 0, 1)
    sensor = EventSensor(sensor_size=(20, 20, 2), samples=40, noise_rate=2.0)
    settings = FrameSettings(n_frames=10, size=10, mode="binary")
    data = events_dataset("tiny-dvs", images[:250], digits.target[:250], images[250:],
                          digits.target[250:300], 10, sensor, settings)
    assert data.x_train.shape == (250, 10, 200) and data.frames == 10
    config = SPIDEConfig(hidden_sizes=(64,), time_step=10, time_step_back=30, epochs=10,
                         batch_size=10)
    records = train(config, data, backend="reference")
    assert records[-1].test_accuracy > 0.5  # 0.74 measured; chance is 0.1
    assert records[-1].forward_rate > 0


def test_dvs_digits_limit_records_only_the_first_digits():
    """``--limit`` records only the digits it keeps, with the frames of the full dataset."""
    pytest.importorskip("tonic")
    from spide_brian.datasets import load_dataset

    small, larger = load_dataset("dvs-digits", limit=3), load_dataset("dvs-digits", limit=5)
    assert small.x_train.shape == (3, 30, 512) and small.x_test.shape == (3, 30, 512)
    np.testing.assert_array_equal(small.x_train, larger.x_train[:3])
    np.testing.assert_array_equal(small.x_test, larger.x_test[:3])
    np.testing.assert_array_equal(small.y_test, [int(v) for v in larger.y_test[:3]])
    assert small.x_train.any() and small.x_test.any()
    with pytest.raises(DataError, match="limit"):
        load_dataset("dvs-digits", limit=0)
