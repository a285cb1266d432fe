"""What successive halving did at each rung, from the trial records alone.

For each rung: the trials that reached it, those stopped there, the epochs their stopping
saved (each stopped trial would have trained to the schedule's last epoch), and how well the
rung's accuracy predicted the final one among the promoted trials that finished (Kendall
tau): a low tau says the rung is too early to judge by.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import TrialState
from scipy.stats import kendalltau

from results.record import read_record


@dataclass(frozen=True)
class RungSummary:
    epoch: int
    reached: int  # distinct architectures decided at this rung
    stopped: int
    epochs_saved: int  # epochs the stopped trials did not train (per seed)
    kendall_tau: float | None  # rung accuracy against final accuracy, promoted and finished
    compared: int  # trials in that correlation


def rung_summaries(study: optuna.Study) -> list[RungSummary]:
    """One row per rung that any trial reached, in epoch order (empty for a full schedule);
    the schedule's last epoch is the one the finished trials trained to."""
    reached: dict[int, dict[str, bool]] = {}  # epoch -> arch hash -> promoted
    finals: dict[str, float] = {}  # arch hash -> final accuracy (finished trials)
    rung_accuracy: dict[tuple[int, str], float] = {}
    final_epoch = 0
    for t in study.get_trials(deepcopy=False):
        record = read_record(t)
        if record is None or record.duplicate_of is not None or record.arch_hash is None:
            continue
        for r in record.rungs:
            reached.setdefault(r.epoch, {})[record.arch_hash] = r.promoted
            rung_accuracy[(r.epoch, record.arch_hash)] = r.accuracy
        if t.state == TrialState.COMPLETE and record.status == "ok" and record.accuracy is not None:
            finals[record.arch_hash] = record.accuracy
            final_epoch = max(final_epoch, len(record.accuracies))
    rows = []
    for epoch in sorted(reached):
        decided = reached[epoch]
        stopped = sum(not promoted for promoted in decided.values())
        pairs = [
            (rung_accuracy[(epoch, h)], finals[h]) for h, p in decided.items() if p and h in finals
        ]
        tau = None
        if len(pairs) >= 3:
            value = kendalltau(*zip(*pairs, strict=True)).statistic
            tau = None if value != value else float(value)  # NaN when one side is constant
        rows.append(
            RungSummary(
                epoch=epoch,
                reached=len(decided),
                stopped=stopped,
                epochs_saved=stopped * (final_epoch - epoch),
                kendall_tau=tau,
                compared=len(pairs),
            )
        )
    return rows


def rung_table_rows(rows: list[RungSummary]) -> list[list[str]]:
    """The rows as text, for the terminal and Markdown: rung, reached, stopped, saved, tau."""
    return [
        [
            f"epoch {r.epoch}",
            str(r.reached),
            str(r.stopped),
            str(r.epochs_saved),
            "-" if r.kendall_tau is None else f"{r.kendall_tau:+.2f} (n={r.compared})",
        ]
        for r in rows
    ]


RUNG_COLUMNS = ["rung", "reached", "stopped", "epochs saved", "tau(rung, final)"]
