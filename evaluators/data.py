"""Datasets as device-resident uint8 tensors (airbench-style): no DataLoader, no workers.

Every dataset is cut into three fixed parts by ``split_seed``: ``train`` (fits the weights),
``val`` (the accuracy the search optimises) and ``holdout`` (never scored by the search; what
``attnas validate`` re-evaluates on). Changing the training seed never moves these splits.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from evaluators.canvas import CUED_MIN_SIZE, draw_cued, window

DATASETS = (
    "digits",
    "clutter",
    "cued",
    "synthetic",
    "cifar10",
    "cifar100",
    "mnist",
    "fashion_mnist",
    "imagefolder",
)


class DataError(ValueError):
    """A dataset that cannot be loaded; the message shows the expected layout."""


@dataclass
class Split:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    holdout: Split
    num_classes: int
    mean: torch.Tensor  # per channel, for normalising uint8 -> float
    std: torch.Tensor
    flip: bool  # whether horizontal flips preserve labels (not for digits)

    @property
    def in_chans(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[-1]

    def to(self, device: torch.device | str) -> Dataset:
        return Dataset(
            self.name,
            self.train.to(device),
            self.val.to(device),
            self.holdout.to(device),
            self.num_classes,
            self.mean.to(device),
            self.std.to(device),
            self.flip,
        )

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().div_(255)
        return (x - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)


def _resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def _three_way(
    images: torch.Tensor,
    labels: torch.Tensor,
    split_seed: int,
    val_fraction: float,
    holdout_fraction: float,
) -> tuple[Split, Split, Split]:
    g = torch.Generator().manual_seed(split_seed)
    order = torch.randperm(len(labels), generator=g)
    n_hold = int(round(len(labels) * holdout_fraction))
    n_val = int(round(len(labels) * val_fraction))
    hold, val, train = order[:n_hold], order[n_hold : n_hold + n_val], order[n_hold + n_val :]
    return tuple(Split(images[i], labels[i]) for i in (train, val, hold))  # type: ignore[return-value]


def _stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = images.float() / 255
    return x.mean((0, 2, 3)), x.std((0, 2, 3)).clamp_min(1e-3)


def _finish(
    name: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    image_size: int,
    split_seed: int,
    val_fraction: float,
    holdout_fraction: float,
    flip: bool,
    holdout: Split | None = None,
) -> Dataset:
    images = _resize_uint8(images, image_size)
    if holdout is None:
        train, val, hold = _three_way(images, labels, split_seed, val_fraction, holdout_fraction)
    else:  # the dataset ships its own test split: use it as the never-searched holdout
        train, val, _ = _three_way(images, labels, split_seed, val_fraction, 0.0)
        hold = Split(_resize_uint8(holdout.images, image_size), holdout.labels)
    mean, std = _stats(train.images)
    return Dataset(name, train, val, hold, num_classes, mean, std, flip)


def _digits() -> tuple[torch.Tensor, torch.Tensor, int]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.from_numpy(digits.images * (255.0 / 16.0)).round().to(torch.uint8)
    return images.unsqueeze(1), torch.from_numpy(digits.target).long(), 10


# The version of what each dataset contains, bumped when its generator or loader changes:
# an evaluation's fingerprint carries its dataset's, so a stored result on an older generation
# is never reused, and a change to one dataset leaves the others' stored results valid. Every
# dataset starts at 2, the one global version all of them shared until then, so no stored
# fingerprint moved. clutter 2: 8 copies per val digit; clutter 3 is taken by the 4-copy screen
# (bench/data/fidelity_clutter16_copies4.jsonl), so clutter's next is 4.
DATA_VERSIONS: dict[str, int] = dict.fromkeys(DATASETS, 2)
CLUTTER_COPIES = 2  # placements of each training digit: more samples, same digits
# Placements of each val/holdout digit. Scoring is cheap next to training, and with 2 copies
# (718 images) two equally good networks differed by about 0.007 (seed sigma at 30 epochs)
# from which images each got wrong, as much as the placements differ: at 30 epochs the
# 12-architecture screen could not tell them apart (ANOVA p 0.59). 8 copies make it 2,872.
CLUTTER_EVAL_COPIES = 8
CLUTTER_FRAGMENTS = 4  # 4x4 pieces of other digits scattered over each canvas
CLUTTER_MIN_SIZE = 12


def _draw_clutter(
    digits: torch.Tensor, pool: torch.Tensor, size: int, generator: torch.Generator
) -> torch.Tensor:
    """Each of ``digits`` at a random place on a ``size`` x ``size`` canvas, with
    ``CLUTTER_FRAGMENTS`` 4x4 fragments of random digits of ``pool`` drawn on top by max;
    batched (every random number drawn first, in the order the first, per-canvas loop drew
    them, then indexing), so a split is built in milliseconds instead of seconds, canvas for
    canvas the same."""
    n, side = len(digits), digits.shape[-1]
    at = torch.randint(0, size - side + 1, (n, 2), generator=generator)
    frag_src = torch.randint(0, len(pool), (n, CLUTTER_FRAGMENTS), generator=generator)
    frag_from = torch.randint(0, side - 4 + 1, (n, CLUTTER_FRAGMENTS, 2), generator=generator)
    frag_at = torch.randint(0, size - 4 + 1, (n, CLUTTER_FRAGMENTS, 2), generator=generator)
    canvas = torch.zeros(n, size, size, digits.shape[1], dtype=torch.uint8)  # channels last
    canvas[window(at, side)] = digits.permute(0, 2, 3, 1)
    for k in range(CLUTTER_FRAGMENTS):
        source = pool[frag_src[:, k]].permute(0, 2, 3, 1)
        piece = source[window(frag_from[:, k], 4)]
        where = window(frag_at[:, k], 4)
        canvas[where] = torch.maximum(canvas[where], piece)
    return canvas.permute(0, 3, 1, 2).contiguous()


def _cluttered(split: Split, size: int, seed: int, copies: int) -> Split:
    """Cluttered, translated digits (the test bed of visual attention models, after Mnih et
    al.'s cluttered MNIST): each 8x8 digit of ``split`` ``copies`` times at a random
    place on a ``size`` x ``size`` canvas, with ``CLUTTER_FRAGMENTS`` 4x4 fragments of other
    digits *of the same split* (no leak between train, val and holdout) drawn on top by max.
    Telling the digit from the fragments is what spatial and channel gating is for."""
    source = torch.arange(len(split)).repeat(copies)
    g = torch.Generator().manual_seed(seed)
    return Split(_draw_clutter(split.images[source], split.images, size, g), split.labels[source])


def _drawn_from_digits(
    r: Request,
    draw: Callable[[Split, int, int, int], Split],
    train_copies: int,
    min_size: int,
    room: str,
) -> Dataset:
    """A generated dataset: the source digits are split first, then ``draw(part, size, seed,
    copies)`` makes each part's images from its own digits only, so none leaks between train,
    val and holdout. ``room`` says why a canvas needs ``min_size``."""
    if r.image_size < min_size:
        raise DataError(f"{r.name}: image_size must be >= {min_size} ({room}), got {r.image_size}")
    images, labels, k = _digits()
    parts = _three_way(images, labels, r.split_seed, r.val_fraction, r.holdout_fraction)
    copies = (train_copies, CLUTTER_EVAL_COPIES, CLUTTER_EVAL_COPIES)
    train, val, hold = (
        draw(part, r.image_size, 1000 * r.split_seed + i, c)
        for i, (part, c) in enumerate(zip(parts, copies, strict=True))
    )
    mean, std = _stats(train.images)
    return Dataset(r.name, train, val, hold, k, mean, std, flip=False)


# Each training digit is a target 4 times, each time beside a new other digit (67 steps an
# epoch). At 2 (33 steps; a scratch screen) the 5-epoch schedule stayed near chance
# (0.24-0.39) and the 30-epoch runs with attention learned the binding from epoch 11-21; at
# 4 they learn it by epoch 9-14, and the 5-epoch schedule still ends before it (README,
# `cued`). Val and holdout as ``clutter``'s.
CUED_COPIES = 4


def _cued_split(split: Split, size: int, seed: int, copies: int) -> Split:
    """Each digit of ``split`` ``copies`` times as the target, beside a random other digit of
    the same split (no leak between train, val and holdout)."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.arange(len(split)).repeat(copies)
    others = torch.randint(0, len(split), (len(targets),), generator=g)
    images = draw_cued(split.images[targets], split.images[others], size, g)
    return Split(images, split.labels[targets])


def _synthetic(
    n: int = 512, num_classes: int = 4, channels: int = 3, size: int = 16, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Class templates plus noise: learnable in a few epochs, for tests only."""
    g = torch.Generator().manual_seed(seed)
    templates = torch.rand(num_classes, channels, size, size, generator=g)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    noise = torch.rand(n, channels, size, size, generator=g)
    images = (0.6 * templates[labels] + 0.4 * noise) * 255
    return images.round().to(torch.uint8), labels, num_classes


CIFAR_LAYOUT = {
    "cifar10": "DATA_DIR/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}",
    "cifar100": "DATA_DIR/cifar-100-python/{train, test, meta}",
}
IMAGEFOLDER_LAYOUT = (
    "DATA_DIR/train/<class>/<image files> (and optionally DATA_DIR/val/<class>/...)"
)


def _cifar(name: str, data_dir: Path, download: bool) -> tuple[Split, Split, int]:
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        parts = [cls(str(data_dir), train=t, download=download) for t in (True, False)]
    except Exception as exc:  # torchvision raises RuntimeError/pickle errors for bad files
        raise DataError(
            f"{name}: no readable dataset under {data_dir} ({str(exc).splitlines()[0]}); "
            f"expected {CIFAR_LAYOUT[name]}"
        ) from None
    splits = [
        Split(
            torch.from_numpy(np.ascontiguousarray(p.data)).permute(0, 3, 1, 2).contiguous(),
            torch.tensor(p.targets, dtype=torch.long),
        )
        for p in parts
    ]
    return splits[0], splits[1], len(parts[0].classes)


def _imagefolder(root: Path, image_size: int) -> tuple[Split, Split | None, int]:
    from torchvision import datasets, transforms

    train_dir = root / "train" if (root / "train").is_dir() else root
    val_dir = root / "val" if (root / "val").is_dir() else None
    tf = transforms.Compose([transforms.Resize((image_size, image_size)), transforms.PILToTensor()])

    def load(folder: Path) -> tuple[Split, list[str]]:
        try:
            ds = datasets.ImageFolder(str(folder), transform=tf)
        except (FileNotFoundError, OSError) as exc:
            raise DataError(
                f"imagefolder: {str(exc).splitlines()[0]}; expected {IMAGEFOLDER_LAYOUT}"
            ) from None
        images, labels = zip(*(ds[i] for i in range(len(ds))), strict=True)
        rgb = [im.expand(3, -1, -1) if im.shape[0] == 1 else im[:3] for im in images]
        return Split(torch.stack(rgb), torch.tensor(labels, dtype=torch.long)), ds.classes

    train, classes = load(train_dir)
    val = None
    if val_dir is not None:
        val, val_classes = load(val_dir)
        if val_classes != classes:
            raise DataError(f"imagefolder: {val_dir} classes differ from {train_dir}'s")
    return train, val, len(classes)


# MNIST and Fashion-MNIST as published (and as Debian's dataset-fashion-mnist installs them
# under /usr/share/datasets/fashion-mnist): four IDX files, gzipped or not.
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_LAYOUT = (
    "DATA_DIR/{train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte} (each may end in .gz)"
)
IDX_DTYPE = 0x08  # unsigned byte, the only element type these files use


def _idx_path(root: Path, stem: str) -> Path | None:
    return next((p for p in (root / stem, root / f"{stem}.gz") if p.is_file()), None)


def _read_idx(path: Path, dims: int) -> np.ndarray:
    """An IDX file (LeCun's format: a magic of two zero bytes, the element type, the number
    of dimensions, each dimension as a big-endian uint32, then the data) as uint8."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] != IDX_DTYPE or raw[3] != dims:
        raise DataError(
            f"{path}: not an IDX file of {dims}-d unsigned bytes; expected {IDX_LAYOUT}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", dims, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: holds {data.size} bytes for shape {shape}; truncated?")
    return data.reshape(shape)


def _idx_split(name: str, root: Path, part: str) -> Split:
    paths = [_idx_path(root, stem) for stem in IDX_FILES[part]]
    if None in paths:
        _check_idx(name, root, IDX_LAYOUT)
    images, labels = _read_idx(paths[0], 3), _read_idx(paths[1], 1)  # type: ignore[arg-type]
    if len(images) != len(labels):
        raise DataError(f"{root}: {len(images)} {part} images but {len(labels)} labels")
    pixels = torch.from_numpy(images.copy()).unsqueeze(1)
    return Split(pixels, torch.from_numpy(labels.astype(np.int64)))


CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", ("data_batch_1", "test_batch", "batches.meta")),
    "cifar100": ("cifar-100-python", ("train", "test", "meta")),
}


@dataclass(frozen=True)
class Request:
    """What every loader is asked for."""

    name: str
    image_size: int
    split_seed: int
    val_fraction: float
    holdout_fraction: float
    root: Path | None  # the user's data_dir (None for the embedded datasets)
    download: bool

    def finish(self, images: torch.Tensor, labels: torch.Tensor, k: int, **kw: Any) -> Dataset:
        return _finish(
            self.name,
            images,
            labels,
            k,
            image_size=self.image_size,
            split_seed=self.split_seed,
            val_fraction=self.val_fraction,
            holdout_fraction=self.holdout_fraction,
            **kw,
        )


def _load_digits(r: Request) -> Dataset:
    return r.finish(*_digits(), flip=False)


def _load_clutter(r: Request) -> Dataset:
    room = "an 8x8 digit with room to move and clutter around it"
    return _drawn_from_digits(r, _cluttered, CLUTTER_COPIES, CLUTTER_MIN_SIZE, room)


def _load_cued(r: Request) -> Dataset:
    room = "two 8x8 digits side by side"
    return _drawn_from_digits(r, _cued_split, CUED_COPIES, CUED_MIN_SIZE, room)


def _load_synthetic(r: Request) -> Dataset:
    return r.finish(*_synthetic(size=r.image_size), flip=True)


def _load_cifar(r: Request) -> Dataset:
    assert r.root is not None
    train, test, k = _cifar(r.name, r.root, r.download)
    return r.finish(train.images, train.labels, k, flip=True, holdout=test)


def _load_idx(r: Request) -> Dataset:
    assert r.root is not None
    train, test = (_idx_split(r.name, r.root, part) for part in IDX_FILES)
    # A mirrored garment is the same garment (the usual Fashion-MNIST augmentation); a
    # mirrored digit is another digit.
    flip = r.name == "fashion_mnist"
    return r.finish(train.images, train.labels, 10, flip=flip, holdout=test)


def _load_imagefolder(r: Request) -> Dataset:
    assert r.root is not None
    train, val, k = _imagefolder(r.root, r.image_size)
    return r.finish(train.images, train.labels, k, flip=True, holdout=val)


def _check_cifar(name: str, root: Path, layout: str) -> None:
    folder, files = CIFAR_FILES[name]
    missing = [f for f in files if not (root / folder / f).is_file()]
    if missing:
        raise DataError(f"{name}: {root / folder} lacks {', '.join(missing)}; expected {layout}")


def _check_idx(name: str, root: Path, layout: str) -> None:
    missing = [stem for pair in IDX_FILES.values() for stem in pair if not _idx_path(root, stem)]
    if missing:
        raise DataError(f"{name}: {root} lacks {', '.join(missing)}; expected {layout}")


def _check_imagefolder(name: str, root: Path, layout: str) -> None:
    train = root / "train" if (root / "train").is_dir() else root
    if not any(p.is_dir() for p in train.iterdir()):
        raise DataError(f"imagefolder: no class folders in {train}; expected {layout}")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its loader, and for those read from a user's folder, the layout it
    expects and a cheap check of it (run before a search starts, not in every trial)."""

    load: Callable[[Request], Dataset]
    layout: str | None = None  # None: embedded, needs no data_dir
    check: Callable[[str, Path, str], None] | None = None


REGISTRY: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(_load_digits),
    "clutter": DatasetSpec(_load_clutter),
    "cued": DatasetSpec(_load_cued),
    "synthetic": DatasetSpec(_load_synthetic),
    "cifar10": DatasetSpec(_load_cifar, CIFAR_LAYOUT["cifar10"], _check_cifar),
    "cifar100": DatasetSpec(_load_cifar, CIFAR_LAYOUT["cifar100"], _check_cifar),
    "mnist": DatasetSpec(_load_idx, IDX_LAYOUT, _check_idx),
    "fashion_mnist": DatasetSpec(_load_idx, IDX_LAYOUT, _check_idx),
    "imagefolder": DatasetSpec(_load_imagefolder, IMAGEFOLDER_LAYOUT, _check_imagefolder),
}
assert tuple(REGISTRY) == DATASETS


def _spec(name: str) -> DatasetSpec:
    if name not in REGISTRY:
        raise DataError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
    return REGISTRY[name]


def _root(name: str, spec: DatasetSpec, data_dir: str | Path | None, download: bool) -> Path:
    if data_dir is None:
        raise DataError(f"{name} needs data_dir; expected {spec.layout}")
    root = Path(data_dir).expanduser()
    if not root.is_dir() and not download:
        raise DataError(f"{name}: data_dir {root} does not exist; expected {spec.layout}")
    return root


def check_data_dir(name: str, data_dir: str | Path | None, download: bool = False) -> None:
    """A cheap check of the layout, so a search fails before it starts, not in every trial."""
    spec = _spec(name)
    if spec.layout is None or download:
        return
    root = _root(name, spec, data_dir, download)
    if spec.check is not None:
        spec.check(name, root, spec.layout)


def load_dataset(
    name: str,
    *,
    image_size: int,
    data_dir: str | Path | None = None,
    split_seed: int = 0,
    val_fraction: float = 0.2,
    holdout_fraction: float = 0.2,
    download: bool = False,
    train_size: int = 0,
    val_size: int = 0,
) -> Dataset:
    """Load ``name`` as uint8 tensors on the CPU; ``Dataset.to(device)`` moves it once.
    ``train_size``/``val_size`` (0: all) keep that many images of the split, the same ones
    for every training seed (drawn by ``split_seed``): a large dataset cut to what a CPU
    trains in seconds an epoch, with fewer steps per epoch."""
    spec = _spec(name)
    root = None if spec.layout is None else _root(name, spec, data_dir, download)
    request = Request(name, image_size, split_seed, val_fraction, holdout_fraction, root, download)
    data = spec.load(request)
    g = torch.Generator().manual_seed(SUBSET_SEED_OFFSET + split_seed)
    data.train = _subset(data.train, train_size, "train_size", name, g)
    data.val = _subset(data.val, val_size, "val_size", name, g)
    return data


# The subsets draw from a generator of their own, so the split itself is the one it would be
# without them.
SUBSET_SEED_OFFSET = 20_000


def _subset(split: Split, size: int, setting: str, name: str, generator: torch.Generator) -> Split:
    if size <= 0:
        return split
    if size > len(split):
        raise DataError(f"{setting} {size} exceeds the {len(split)} images of {name}'s split")
    keep = torch.randperm(len(split), generator=generator)[:size]
    return Split(split.images[keep], split.labels[keep])


def augment(images: torch.Tensor, generator: torch.Generator, flip: bool) -> torch.Tensor:
    """Random crop (reflect-padded by 1/8 of the side) and optional flip, batched on tensors."""
    n, _, h, w = images.shape
    pad = max(1, h // 8)
    padded = F.pad(images.float(), (pad, pad, pad, pad), mode="reflect")
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).to(images.device)
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).to(images.device)
    idx_n = torch.arange(n, device=images.device).view(n, 1, 1)
    out = padded.permute(0, 2, 3, 1)[idx_n, rows.view(n, h, 1), cols.view(n, 1, w)]
    out = out.permute(0, 3, 1, 2)
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(images.device)
        out = torch.where(mask.view(n, 1, 1, 1), out.flip(3), out)
    return out
