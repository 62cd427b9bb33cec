"""The event-camera simulator: exact events of hand-made intensities, moving stimuli."""

import math

import numpy as np
import pytest

from pysnn.datasets import (
    EVENT_DTYPE,
    direction_velocity,
    intensity_to_events,
    moving_edge,
    moving_events,
    moving_texture,
    random_texture,
    to_frames,
)


def test_log_ramp_gives_floor_of_change_over_threshold_at_interpolated_times():
    # one pixel, log I rising 0.07 per ms for 10 ms: 0.7 / 0.2 -> 3 ON events, at the
    # times log I crosses 0.2, 0.4, 0.6: 2.857, 5.714, 8.571 ms
    k = np.arange(11)
    frames = np.exp(0.07 * k).reshape(11, 1, 1)
    events = intensity_to_events(frames, k * 1000, threshold=0.2, eps=0.0)
    assert events.dtype == EVENT_DTYPE
    assert events["t"].tolist() == [2857, 5714, 8571]
    assert events["p"].tolist() == [1, 1, 1]
    # then falling by 0.5 in one frame: OFF crossings of 0.4 and 0.2 (the reference is 0.6)
    frames2 = np.concatenate([frames, np.exp(np.array([0.2])).reshape(1, 1, 1)])
    events2 = intensity_to_events(frames2, np.arange(12) * 1000, threshold=0.2, eps=0.0)
    off = events2[events2["p"] == 0]
    # L goes 0.7 -> 0.2 over [10, 11] ms: crosses 0.4 at 10.6 ms and 0.2 at 11 ms
    assert off["t"].tolist() == [10600, 11000]


def test_count_for_many_pixels_and_separate_off_threshold():
    rng = np.random.default_rng(0)
    start = rng.uniform(0.2, 1.0, (4, 5))
    change = rng.uniform(-1.5, 1.5, (4, 5))
    frames = np.stack([start, start * np.exp(change)])
    events = intensity_to_events(frames, [0, 1000], threshold=0.3, threshold_off=0.4, eps=0.0)
    counts = np.zeros((4, 5), dtype=int)
    np.add.at(counts, (events["y"], events["x"]), 1)
    expected = np.where(change > 0, np.floor(change / 0.3), np.floor(-change / 0.4))
    np.testing.assert_array_equal(counts, expected)
    on = np.zeros((4, 5), dtype=int)
    np.add.at(on, (events["y"], events["x"]), events["p"].astype(int))
    np.testing.assert_array_equal(on > 0, (change > 0) & (expected > 0))
    assert np.all(np.diff(events["t"]) >= 0)


def test_refractory_period_drops_close_events_and_keeps_the_change_pending():
    # log I jumps by 1.0 within 1 ms (5 crossings of 0.2, 200 us apart), then stays
    frames = np.exp(np.array([0.0, 1.0, 1.0, 1.0])).reshape(4, 1, 1)
    times = [0, 1000, 2000, 3000]
    free = intensity_to_events(frames, times, threshold=0.2, eps=0.0)
    assert free["t"].tolist() == [200, 400, 600, 800, 1000]
    slow = intensity_to_events(frames, times, threshold=0.2, eps=0.0, refractory_us=500)
    # crossings at 200 and 800 us are >= 500 us apart and kept; the 3 missed ones stay
    # pending: at the start of the next interval (1000 us) the pixel is refractory until
    # 1300 us, at 2000 us it fires one (the next two are within 500 us of it)
    assert slow["t"].tolist() == [200, 800, 2000]
    assert slow["p"].tolist() == [1, 1, 1]


def test_moving_edge_events_move_in_the_stimulus_direction():
    for direction in range(0, 360, 45):
        frames = moving_edge(direction, speed=0.2, size=24, duration_ms=120, dt_ms=1.0)
        events = moving_events(frames, dt_ms=1.0, threshold=0.15)
        assert events.size > 100
        on = events[events["p"] == 1]
        assert on.size > 0.9 * events.size  # a dark-to-bright sweep
        # least-squares velocity of the event positions against time
        t = on["t"] / 1000.0
        vx = np.polyfit(t, on["x"].astype(float), 1)[0]
        vy = np.polyfit(t, on["y"].astype(float), 1)[0]
        ex, ey = direction_velocity(direction, 0.2)
        measured = math.degrees(math.atan2(-vy, vx)) % 360
        assert min(abs(measured - direction), 360 - abs(measured - direction)) < 10
        # the edge moves perpendicular to itself at 0.2 px/ms: speed along the motion
        assert (vx * ex + vy * ey) / 0.2 == pytest.approx(0.2, rel=0.25)


def test_moving_texture_translates_with_subpixel_shifts():
    texture = random_texture(32, scale=2.0, seed=1)
    assert texture.min() == pytest.approx(0.1) and texture.max() == pytest.approx(0.9)
    frames = moving_texture(texture, 0.0, speed=0.5, size=(8, 10), duration_ms=4, dt_ms=1)
    assert frames.shape == (5, 8, 10)
    np.testing.assert_allclose(frames[0], texture[:8, :10])
    # 2 ms at 0.5 px/ms to the right: I(x, t) = P(x - 1)
    np.testing.assert_allclose(frames[2][:, 1:], texture[:8, :9])
    np.testing.assert_allclose(frames[1][:, 1:], 0.5 * (texture[:8, :9] + texture[:8, 1:10]))
    events = moving_events(frames, 1.0, threshold=0.1)
    binned = to_frames(events, (10, 8), n_bins=4, t_start=0, t_end=4001)
    assert binned.shape == (4, 2, 8, 10) and binned.sum() == events.size


def test_bad_input_names_the_argument():
    frames = np.ones((3, 2, 2))
    with pytest.raises(ValueError, match="frames"):
        intensity_to_events(np.ones((1, 2, 2)), [0])
    with pytest.raises(ValueError, match="frames"):
        intensity_to_events(-frames, [0, 1, 2])
    with pytest.raises(ValueError, match="times_us"):
        intensity_to_events(frames, [0, 2, 1])
    with pytest.raises(ValueError, match="times_us"):
        intensity_to_events(frames, [0, 1])
    with pytest.raises(ValueError, match="threshold"):
        intensity_to_events(frames, [0, 1, 2], threshold=0.0)
    with pytest.raises(ValueError, match="threshold_off"):
        intensity_to_events(frames, [0, 1, 2], threshold_off=-1.0)
    with pytest.raises(ValueError, match="refractory_us"):
        intensity_to_events(frames, [0, 1, 2], refractory_us=-1)
    with pytest.raises(ValueError, match="eps"):
        intensity_to_events(np.zeros((3, 2, 2)), [0, 1, 2], eps=0.0)
    with pytest.raises(ValueError, match="speed"):
        moving_edge(0, speed=0.0)
    with pytest.raises(TypeError, match="direction_deg"):
        moving_edge("left", speed=1.0)
    with pytest.raises(ValueError, match="size"):
        moving_texture(np.ones((4, 4)), 0, 1.0, size=(0, 3))
    with pytest.raises(ValueError, match="contrast"):
        random_texture(8, contrast=2.0)
    with pytest.raises(ValueError, match="texture"):
        moving_texture(np.ones(4), 0, 1.0)
