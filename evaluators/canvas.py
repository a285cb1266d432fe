"""Drawing generated images onto canvases, batched: every random number drawn first, then
indexing (a split of thousands of canvases is built in milliseconds)."""

from __future__ import annotations

import torch

DIGIT_SIDE = 8  # scikit-learn's digits
BRIGHT = 255
# The dim digit's brightness in ``cued`` (and a dim cue's): far enough from ``BRIGHT`` that a
# network can tell the two apart at a glance; the task is in binding the cue to the digit.
DIM = 110
CUE_SIDE = 2
CUED_MIN_SIZE = 2 * DIGIT_SIDE  # two digits side by side


def window(at: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Advanced indices (image, row, column) of a ``side`` x ``side`` window at each ``at``."""
    n, span = len(at), torch.arange(side)
    rows = (at[:, :1] + span).view(n, side, 1)
    cols = (at[:, 1:] + span).view(n, 1, side)
    return torch.arange(n).view(n, 1, 1), rows, cols


def _dimmed(digits: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """``digits`` (n, 1, 8, 8) uint8 scaled to peak ``level`` (n,), channels last."""
    scaled = digits.float() * (level.view(-1, 1, 1, 1).float() / BRIGHT)
    return scaled.round().to(torch.uint8).permute(0, 2, 3, 1)


def _cue_rows(digit_row: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A row for each cue, uniform over the places above or below the digit in its half (the
    cue never touches a digit, so it is never part of one's shape)."""
    above = (digit_row - CUE_SIDE + 1).clamp_min(0)
    below = (size - digit_row - DIGIT_SIDE - CUE_SIDE + 1).clamp_min(0)
    u = (torch.rand(len(digit_row), generator=generator) * (above + below)).long()
    return torch.where(u < above, u, digit_row + DIGIT_SIDE + (u - above))


def draw_cued(
    targets: torch.Tensor, others: torch.Tensor, size: int, generator: torch.Generator
) -> torch.Tensor:
    """Two digits side by side, one bright and one dim, each at a random place in its half of
    a ``size`` x ``size`` canvas, and a 2x2 cue as bright as the target, at a random free
    place in either half. The label is the target's: which digit to name is told by a
    small mark elsewhere, so a network must carry the cue's brightness across the image to
    the digit it selects (feature binding by global context, what SE-style gating does; a
    network without gating must build it from convolutions, which took it far longer in the
    screens, see README)."""
    n, half = len(targets), size // 2
    target_left = torch.randint(0, 2, (n,), generator=generator).bool()
    target_bright = torch.randint(0, 2, (n,), generator=generator).bool()
    rows = torch.randint(0, size - DIGIT_SIDE + 1, (n, 2), generator=generator)
    cols = torch.randint(0, half - DIGIT_SIDE + 1, (n, 2), generator=generator)
    cue_left = torch.randint(0, 2, (n,), generator=generator).bool()
    cue_col = torch.randint(0, half - CUE_SIDE + 1, (n,), generator=generator)
    # the cue's half holds the target or the other digit: keep clear of that one's rows
    beside = torch.where(cue_left == target_left, rows[:, 0], rows[:, 1])
    cue_row = _cue_rows(beside, size, generator)

    level = torch.where(target_bright, BRIGHT, DIM)
    other_level = torch.where(target_bright, DIM, BRIGHT)
    offset = torch.where(target_left, 0, half)
    canvas = torch.zeros(n, size, size, 1, dtype=torch.uint8)  # channels last
    target_at = torch.stack([rows[:, 0], offset + cols[:, 0]], 1)
    other_at = torch.stack([rows[:, 1], (half - offset) + cols[:, 1]], 1)
    canvas[window(target_at, DIGIT_SIDE)] = _dimmed(targets, level)
    canvas[window(other_at, DIGIT_SIDE)] = _dimmed(others, other_level)
    cue_at = torch.stack([cue_row, torch.where(cue_left, 0, half) + cue_col], 1)
    canvas[window(cue_at, CUE_SIDE)] = level.to(torch.uint8).view(n, 1, 1, 1)
    return canvas.permute(0, 3, 1, 2).contiguous()
