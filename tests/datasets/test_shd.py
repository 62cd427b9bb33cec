"""The SHD reader against small HDF5 files written in the SHD layout with known spike times."""

import sys

import numpy as np
import pytest
import torch

from pysnn.datasets import SHD, write_shd

h5py = pytest.importorskip("h5py")

# sample 0: times (s) -> ms 0, 9.9, 10.1, 12.3, 12.3, 250 (exactly on the edge of bin 25)
TIMES = [[0.0, 0.0099, 0.0101, 0.0123, 0.0123, 0.25], [0.0155, 0.031], []]
UNITS = [[0, 1, 4, 5, 9, 699], [2, 2], []]
LABELS = [3, 0, 19]
SPEAKERS = [7, 1, 11]
KEYS = [f"digit-{k}" for k in range(20)]


@pytest.fixture
def shd_file(tmp_path):
    path = tmp_path / "shd_small.h5"
    write_shd(path, TIMES, UNITS, LABELS, speakers=SPEAKERS, keys=KEYS)
    return path


def _dense(steps, channels, entries):
    out = torch.zeros(steps, channels)
    for (t, c), value in entries.items():
        out[t, c] = value
    return out


def test_file_has_the_shd_layout(shd_file):
    with h5py.File(shd_file, "r") as f:
        assert f["spikes/times"].dtype.metadata["vlen"] == np.float32
        assert f["spikes/units"].dtype.metadata["vlen"] == np.uint16
        assert f["labels"].dtype == np.uint8
        assert f["extra/speaker"][()].tolist() == SPEAKERS
        np.testing.assert_array_equal(f["spikes/units"][0], UNITS[0])


def test_a_spike_at_t_lands_in_bin_floor_t_over_dt(shd_file):
    data = SHD(shd_file, dt=10.0)
    assert len(data) == 3
    x, label = data[0]
    expected = _dense(
        26, 700, {(0, 0): 1, (0, 1): 1, (1, 4): 1, (1, 5): 1, (1, 9): 1, (25, 699): 1}
    )
    assert label == 3 and x.dtype == torch.float32
    assert torch.equal(x, expected)  # 250 ms at dt = 10 ms: the edge belongs to the later bin
    x, label = data[1]
    assert label == 0 and torch.equal(x, _dense(4, 700, {(1, 2): 1, (3, 2): 1}))
    x, label = data[-1]  # no spikes: one empty step
    assert label == 19 and torch.equal(x, torch.zeros(1, 700))
    assert data.dropped == 0


def test_two_spikes_in_one_bin_count_two_and_channel_groups_sum(shd_file):
    data = SHD(shd_file, dt=10.0, channel_group=5, dtype=torch.float64)
    x, _ = data[0]
    assert data.out_channels == 140 and x.dtype == torch.float64
    # units 0, 1 -> channel 0 at step 0; 4 -> 0, 5 and 9 -> 1 at step 1; 699 -> 139
    assert torch.equal(x, _dense(26, 140, {(0, 0): 2, (1, 0): 1, (1, 1): 2, (25, 139): 1}).double())
    x, _ = SHD(shd_file, dt=5.0)[0]  # 10.1 ms (unit 4), 12.3 ms (units 5, 9): step 2
    assert x[2].sum() == 3 and x[2, 4] == 1 and x[2, 5] == 1 and x[2, 9] == 1
    assert x.shape[0] == 51 and x[1].sum() == 1 and x[1, 1] == 1  # 9.9 ms
    x, _ = SHD(shd_file, dt=40.0)[1]  # 15.5 and 31 ms on unit 2: one bin, count 2
    assert x.shape == (1, 700) and x[0, 2] == 2 and x.sum() == 2
    # one channel: 15.5 ms, and 0.031 s, which float32 stores as 30.9999995 ms: bin 30
    x, _ = SHD(shd_file, dt=1.0, channel_group=700)[1]
    assert x.shape == (31, 1) and x[15, 0] == 1 and x[30, 0] == 1 and x.sum() == 2
    x, _ = SHD(shd_file, dt=10.0, channel_group=3)[0]  # 700 / 3: 234 channels, the last partial
    assert x.shape == (26, 234) and x[25, 233] == 1 and x[1, 1] == 2 and x[1, 3] == 1  # 4, 5; 9


def test_max_time_fixes_the_length_and_drops_later_spikes(shd_file):
    data = SHD(shd_file, dt=10.0, max_time=20.0)
    assert data.steps == 2
    x, _ = data[0]  # the spike at 250 ms is dropped
    assert torch.equal(x, _dense(2, 700, {(0, 0): 1, (0, 1): 1, (1, 4): 1, (1, 5): 1, (1, 9): 1}))
    assert data.dropped == 1
    x, _ = data[1]  # 15.5 ms kept, 31 ms dropped
    assert torch.equal(x, _dense(2, 700, {(1, 2): 1}))
    assert data.dropped == 2
    assert torch.equal(data[2][0], torch.zeros(2, 700))
    # a window that is not a whole number of bins: ceil(25 / 10) = 3 steps, t < 25 ms kept
    data = SHD(shd_file, dt=10.0, max_time=25.0)
    assert data.steps == 3 and data[1][0][1, 2] == 1 and data[1][0].sum() == 1
    assert data[0][0].sum() == 5
    # 250 ms is outside [0, 250): dropped; 250.5 keeps it in the last bin, 25
    assert SHD(shd_file, dt=10.0, max_time=250.0)[0][0].sum() == 5
    x, _ = SHD(shd_file, dt=10.0, max_time=250.5)[0]
    assert x.shape == (26, 700) and x[25, 699] == 1 and x.sum() == 6


def test_labels_speakers_and_class_names(shd_file):
    data = SHD(shd_file)
    assert data.labels.tolist() == LABELS and data.labels.dtype == torch.int64
    assert data.speakers.tolist() == SPEAKERS
    assert data.classes == KEYS


def test_batch_pads_to_the_longest_sample_time_first(shd_file):
    data = SHD(shd_file, dt=10.0)
    x, y = data.batch([1, 0, 2, 1])
    assert x.shape == (26, 4, 700) and y.tolist() == [0, 3, 19, 0]
    for b, i in enumerate([1, 0, 2, 1]):
        single, _ = data[i]
        assert torch.equal(x[: single.shape[0], b], single)
        assert x[single.shape[0] :, b].sum() == 0
    # the DataLoader path gives the same batch
    loader = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=SHD.collate)
    xb, yb = next(iter(loader))
    assert torch.equal(xb, data.batch([0, 1, 2])[0]) and yb.tolist() == LABELS
    fixed, _ = SHD(shd_file, dt=10.0, max_time=40.0).batch([2, 1])
    assert fixed.shape == (4, 2, 700) and fixed[3, 1, 2] == 1


def test_batches_cover_every_sample_once(shd_file):
    data = SHD(shd_file, dt=10.0)
    seen = [y.tolist() for _, y in data.batches(2)]
    assert seen == [[3, 0], [19]]
    assert [len(y) for _, y in data.batches(2, drop_last=True)] == [2]
    gen = torch.Generator().manual_seed(0)
    shuffled = [y for _, y in data.batches(1, shuffle=True, generator=gen)]
    assert sorted(int(y) for y in shuffled) == sorted(LABELS)
    again = [
        y for _, y in data.batches(1, shuffle=True, generator=torch.Generator().manual_seed(0))
    ]
    assert [int(y) for y in again] == [int(y) for y in shuffled]


def test_pickles_without_its_open_file_for_dataloader_workers(shd_file):
    import pickle

    data = SHD(shd_file, dt=10.0)
    first, _ = data[0]  # opens the file
    copy = pickle.loads(pickle.dumps(data))
    assert torch.equal(copy[0][0], first) and copy.labels.tolist() == LABELS
    data.close()
    assert torch.equal(data[1][0], copy[1][0])  # reopens after close()


def test_reads_float16_times_and_uint16_labels(tmp_path):
    path = tmp_path / "f16.h5"
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (1,), dtype=h5py.vlen_dtype(np.float16))
        units = f.create_dataset("spikes/units", (1,), dtype=h5py.vlen_dtype(np.uint16))
        times[0] = np.array([0.0625, 0.25], dtype=np.float16)  # 62.5 and 250 ms, exact
        units[0] = np.array([3, 4], dtype=np.uint16)
        f.create_dataset("labels", data=np.array([12], dtype=np.uint16))
    x, label = SHD(path, dt=62.5)[0]
    assert label == 12 and x.shape == (5, 700) and x[1, 3] == 1 and x[4, 4] == 1 and x.sum() == 2
    assert SHD(path).speakers is None and SHD(path).classes is None


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"dt": 0.0}, "dt"),
        ({"dt": -1.0}, "dt"),
        ({"dt": float("nan")}, "dt"),
        ({"dt": "10"}, "dt"),
        ({"max_time": 0.0}, "max_time"),
        ({"max_time": float("inf")}, "max_time"),
        ({"channel_group": 0}, "channel_group"),
        ({"channel_group": 701}, "channel_group"),
        ({"channel_group": 2.5}, "channel_group"),
        ({"channels": 0}, "channels"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(shd_file, kwargs, name):
    with pytest.raises(ValueError, match=name):
        SHD(shd_file, **kwargs)


def test_bad_dtype_batch_size_index_and_files(shd_file, tmp_path):
    with pytest.raises(TypeError, match="dtype"):
        SHD(shd_file, dtype=torch.int64)
    data = SHD(shd_file)
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batches(0))
    with pytest.raises(IndexError):
        data[3]
    with pytest.raises(FileNotFoundError, match="zenkelab.org"):
        SHD(tmp_path / "shd_train.h5")
    broken = tmp_path / "broken.h5"
    with h5py.File(broken, "w") as f:
        f.create_dataset("labels", data=np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="spikes/times"):
        SHD(broken)
    with pytest.raises(ValueError, match="channels"):
        SHD(shd_file, channels=600)[0]  # unit 699 is outside 600 channels
    with pytest.raises(ValueError, match="lengths"):
        write_shd(tmp_path / "x.h5", TIMES, UNITS, LABELS[:2])
    with pytest.raises(ValueError, match="sample 0"):
        write_shd(tmp_path / "x.h5", [[0.1]], [[1, 2]], [0])


def test_missing_h5py_names_the_install(shd_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"pip install h5py .*pysnn\[data\]"):
        SHD(shd_file)
