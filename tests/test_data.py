"""Datasets: splits are fixed by seed, on-disk formats load from files made here, and bad
directories say what layout was expected."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from evaluators.data import DataError, augment, load_dataset


def test_digits_splits_are_disjoint_and_fixed():
    a = load_dataset("digits", image_size=16, split_seed=0)
    b = load_dataset("digits", image_size=16, split_seed=0)
    c = load_dataset("digits", image_size=16, split_seed=1)
    assert len(a.train) + len(a.val) + len(a.holdout) == 1797
    assert a.train.images.shape[1:] == (1, 16, 16) and a.train.images.dtype == torch.uint8
    assert torch.equal(a.val.labels, b.val.labels) and not torch.equal(a.val.labels, c.val.labels)
    flat = lambda s: {tuple(x.flatten().tolist()) for x in s.images}  # noqa: E731
    assert not flat(a.val) & flat(a.holdout) - flat(a.train)  # no leakage beyond duplicates


def _write_cifar10(root, n_train=20, n_test=10):
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(n):
        return {
            "data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
            "labels": rng.integers(0, 10, n).tolist(),
        }

    for i in range(1, 6):
        with open(base / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch(n_train // 5), f)
    with open(base / "test_batch", "wb") as f:
        pickle.dump(batch(n_test), f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)


def test_cifar10_format_loads(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10, cifar

    _write_cifar10(tmp_path)
    # torchvision checks md5 sums of the published files; ours are generated here.
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)
    data = load_dataset("cifar10", data_dir=tmp_path, image_size=32)
    assert data.num_classes == 10 and data.in_chans == 3
    assert len(data.train) + len(data.val) == 20 and len(data.holdout) == 10
    assert data.train.images.shape[1:] == (3, 32, 32)


def test_imagefolder_loads_train_and_val(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        for cls in ("cat", "dog", "eel"):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                arr = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i}.png")
    data = load_dataset("imagefolder", data_dir=tmp_path, image_size=12)
    assert data.num_classes == 3 and data.train.images.shape[1:] == (3, 12, 12)
    assert len(data.train) + len(data.val) == 18 and len(data.holdout) == 6
    assert set(data.holdout.labels.tolist()) == {0, 1, 2}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
        ("imagefolder", "DATA_DIR/train/<class>"),
    ],
)
def test_missing_dir_shows_expected_layout(tmp_path, name, expected):
    with pytest.raises(DataError, match="does not exist") as info:
        load_dataset(name, data_dir=tmp_path / "nope", image_size=32)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_malformed_dirs_show_expected_layout(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError, match="cifar-10-batches-py"):
        load_dataset("cifar10", data_dir=tmp_path, image_size=32)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="DATA_DIR/train/<class>"):
        load_dataset("imagefolder", data_dir=empty, image_size=32)
    with pytest.raises(DataError, match="needs data_dir"):
        load_dataset("cifar100", image_size=32)


def test_augment_keeps_shape_and_moves_pixels():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    out = augment(images, torch.Generator().manual_seed(0), flip=True)
    assert out.shape == images.shape
    out2 = augment(images, torch.Generator().manual_seed(0), flip=True)
    assert torch.equal(out, out2)


def test_clutter_is_cluttered_translated_digits_with_no_leak_between_splits():
    from evaluators.data import CLUTTER_COPIES, CLUTTER_EVAL_COPIES

    data = load_dataset("clutter", image_size=16)
    plain = load_dataset("digits", image_size=8)  # the same split of the source digits
    assert len(data.train) == CLUTTER_COPIES * len(plain.train)
    assert len(data.val) == CLUTTER_EVAL_COPIES * len(plain.val)
    assert len(data.holdout) == CLUTTER_EVAL_COPIES * len(plain.holdout)
    assert data.train.images.shape[1:] == (1, 16, 16) and data.num_classes == 10
    assert not data.flip  # a mirrored digit is another digit
    again = load_dataset("clutter", image_size=16)
    assert torch.equal(again.train.images, data.train.images)  # generated deterministically
    # More ink than one digit (the clutter), and the digit moves around the canvas.
    digits = load_dataset("digits", image_size=8)
    assert (data.train.images > 0).float().sum((1, 2, 3)).mean() > (
        (digits.train.images > 0).float().sum((1, 2, 3)).mean()
    )
    centre = data.train.images.float().mean(1)
    ys = (centre.sum(2) * torch.arange(16)).sum(1) / centre.sum((1, 2))
    assert ys.std() > 1.0
    # Clutter comes from the same split only: with one source digit in a split, every pixel
    # value on every canvas is one of that digit's values.
    from evaluators.data import Split, _cluttered

    one = Split(digits.train.images[:1], digits.train.labels[:1])
    canvases = _cluttered(one, 16, seed=3, copies=3)
    assert set(canvases.images.unique().tolist()) <= set(one.images.unique().tolist()) | {0}
    assert canvases.labels.tolist() == [one.labels.item()] * 3


def test_clutter_needs_room_to_move():
    with pytest.raises(DataError, match="clutter: image_size must be >= 12 .* got 8"):
        load_dataset("clutter", image_size=8)


def _clutter_by_loop(split, size: int, seed: int, copies: int) -> torch.Tensor:
    """The canvases drawn one at a time, as the first generator did: the batched one must
    give exactly these (stored results on ``clutter`` were trained on them)."""
    from evaluators.data import CLUTTER_FRAGMENTS

    g = torch.Generator().manual_seed(seed)
    n_src, digit = len(split), split.images.shape[-1]
    n = n_src * copies
    source = torch.arange(n_src).repeat(copies)
    canvas = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    at = torch.randint(0, size - digit + 1, (n, 2), generator=g)
    frag_src = torch.randint(0, n_src, (n, CLUTTER_FRAGMENTS), generator=g)
    frag_from = torch.randint(0, digit - 4 + 1, (n, CLUTTER_FRAGMENTS, 2), generator=g)
    frag_at = torch.randint(0, size - 4 + 1, (n, CLUTTER_FRAGMENTS, 2), generator=g)
    for i in range(n):
        y, x = at[i].tolist()
        canvas[i, :, y : y + digit, x : x + digit] = split.images[source[i]]
        for k in range(CLUTTER_FRAGMENTS):
            (fy, fx), (ty, tx) = frag_from[i, k].tolist(), frag_at[i, k].tolist()
            piece = split.images[frag_src[i, k], :, fy : fy + 4, fx : fx + 4]
            region = canvas[i, :, ty : ty + 4, tx : tx + 4]
            torch.maximum(region, piece, out=region)
    return canvas


def test_batched_clutter_draws_exactly_the_canvases_of_the_loop():
    from evaluators.data import Split, _cluttered

    digits = load_dataset("digits", image_size=8)
    part = Split(digits.val.images[:40], digits.val.labels[:40])
    for size in (12, 16, 23):
        drawn = _cluttered(part, size, seed=7, copies=3)
        assert torch.equal(drawn.images, _clutter_by_loop(part, size, seed=7, copies=3))


@pytest.mark.parametrize("size", [16, 20])
def test_cued_draws_a_bright_and_a_dim_digit_in_separate_halves_and_a_cue_at_the_targets_level(
    size: int,
):
    from evaluators.canvas import BRIGHT, CUE_SIDE, DIM, draw_cued

    n, cue = 400, CUE_SIDE**2
    # solid 8x8 "digits", the other ones greyer, so each drawn square says which it is
    targets = torch.full((n, 1, 8, 8), 255, dtype=torch.uint8)
    others = torch.full((n, 1, 8, 8), 200, dtype=torch.uint8)
    other_levels = {200, round(200 * DIM / BRIGHT)}
    canvases = draw_cued(targets, others, size, torch.Generator().manual_seed(0))
    assert canvases.shape == (n, 1, size, size) and canvases.dtype == torch.uint8
    half = size // 2
    seen = set()
    for canvas in canvases[:, 0]:
        values, counts = canvas[canvas > 0].unique(return_counts=True)
        ink = dict(zip(values.tolist(), counts.tolist(), strict=True))
        # the target's square and the cue share one level; the other square has its own
        (target_level,) = {BRIGHT, DIM} & set(ink)
        (other_level,) = other_levels & set(ink)
        assert ink == {target_level: 64 + cue, other_level: 64}  # nothing overlaps
        assert (target_level == BRIGHT) == (other_level < 200)  # one bright, one dim
        left, right = canvas[:, :half], canvas[:, half:]
        target_left = int((left == target_level).sum()) >= 64
        assert int((right if target_left else left).eq(other_level).sum()) == 64
        cue_left = int((left == target_level).sum()) in (cue, 64 + cue)
        seen.add((target_level, target_left, cue_left))
    assert len(seen) == 8  # every level, side and cue side occurs


def test_cued_labels_name_the_target_and_splits_draw_only_their_own_digits():
    from evaluators.data import CLUTTER_EVAL_COPIES, CUED_COPIES, Split, _cued_split

    data = load_dataset("cued", image_size=16)
    plain = load_dataset("digits", image_size=8)  # the same split of the source digits
    assert len(data.train) == CUED_COPIES * len(plain.train)
    assert len(data.val) == CLUTTER_EVAL_COPIES * len(plain.val)
    assert data.train.labels.tolist() == plain.train.labels.repeat(CUED_COPIES).tolist()
    assert data.train.images.shape[1:] == (1, 16, 16) and not data.flip
    assert torch.equal(load_dataset("cued", image_size=16).val.images, data.val.images)
    # with two source digits in a split (solid squares, told apart by their level), every
    # canvas shows two of them and the cue, and nothing else
    from evaluators.canvas import BRIGHT, CUE_SIDE, DIM

    squares = torch.stack([torch.full((1, 8, 8), v, dtype=torch.uint8) for v in (255, 160)])
    pair = Split(squares, torch.tensor([3, 7]))
    canvases = _cued_split(pair, 16, seed=3, copies=50)
    assert canvases.labels.tolist() == pair.labels.tolist() * 50
    levels = {0} | {round(v * f) for v in (255, 160) for f in (1, DIM / BRIGHT)}
    assert set(canvases.images.unique().tolist()) <= levels
    assert (canvases.images > 0).sum((1, 2, 3)).tolist() == [2 * 64 + CUE_SIDE**2] * 100


def test_cued_needs_two_digits_side_by_side():
    with pytest.raises(DataError, match="cued: image_size must be >= 16 .* got 12"):
        load_dataset("cued", image_size=12)


def _write_idx(path, array: np.ndarray, compress: bool) -> None:
    """An IDX file as LeCun published MNIST's (Fashion-MNIST keeps the format)."""
    import gzip

    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def _write_mnist_layout(root, n_train=30, n_test=12, compress=True):
    rng = np.random.default_rng(0)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(root / f"{stem}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)), compress)
        _write_idx(root / f"{stem}-labels-idx1-ubyte", np.arange(n) % 10, compress)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_and_mnist_load_the_idx_files_with_the_test_set_as_holdout(
    tmp_path, compress
):
    _write_mnist_layout(tmp_path, compress=compress)
    fashion = load_dataset("fashion_mnist", data_dir=tmp_path, image_size=16)
    assert fashion.num_classes == 10 and fashion.in_chans == 1
    assert fashion.train.images.shape[1:] == (1, 16, 16)
    assert len(fashion.train) + len(fashion.val) == 30 and len(fashion.holdout) == 12
    assert fashion.holdout.labels.tolist() == [i % 10 for i in range(12)]  # the test file's
    assert fashion.flip  # a mirrored garment is the same garment
    assert not load_dataset("mnist", data_dir=tmp_path, image_size=28).flip  # not a digit


def test_a_bad_idx_file_names_itself_and_a_missing_one_the_layout(tmp_path):
    _write_mnist_layout(tmp_path, compress=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01garbage")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: not an IDX file"):
        load_dataset("mnist", data_dir=tmp_path, image_size=28)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="fashion_mnist: .* lacks t10k-labels-idx1-ubyte; exp"):
        load_dataset("fashion_mnist", data_dir=tmp_path, image_size=28)
    from evaluators.data import check_data_dir

    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte"):
        check_data_dir("fashion_mnist", tmp_path)


def test_train_and_val_sizes_keep_the_same_images_for_every_load_and_leave_holdout_whole():
    full = load_dataset("digits", image_size=8)
    cut = load_dataset("digits", image_size=8, train_size=100, val_size=50)
    again = load_dataset("digits", image_size=8, train_size=100, val_size=50)
    assert (len(cut.train), len(cut.val), len(cut.holdout)) == (100, 50, len(full.holdout))
    assert torch.equal(cut.train.images, again.train.images)
    assert torch.equal(cut.val.labels, again.val.labels)
    whole = {tuple(x.flatten().tolist()) for x in full.train.images}
    assert all(tuple(x.flatten().tolist()) in whole for x in cut.train.images)  # a subset
    with pytest.raises(DataError, match=f"train_size 5000 exceeds the {len(full.train)} images"):
        load_dataset("digits", image_size=8, train_size=5000)


def test_the_sizes_enter_the_fingerprint_only_when_set():
    # Unset, they leave every stored fingerprint alone (pinned in test_handoff.py).
    from evaluators.evaluate import EvalConfig

    base = EvalConfig(dataset="digits", image_size=16)
    assert EvalConfig(dataset="digits", image_size=16, train_size=0).fingerprint() == (
        base.fingerprint()
    )
    cut = {
        EvalConfig(dataset="digits", image_size=16, **k).fingerprint()
        for k in ({"train_size": 100}, {"val_size": 100}, {"train_size": 100, "val_size": 100})
    }
    assert len(cut) == 3 and base.fingerprint() not in cut
