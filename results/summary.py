"""Small read-only views of a study for the CLI: state counts and the Pareto front table."""

from __future__ import annotations

from collections import Counter

import optuna
from optuna.trial import TrialState
from rich.table import Table

from results.record import read_record


def state_counts(study: optuna.Study) -> dict[str, int]:
    """Trials by state; COMPLETE is split into distinct architectures and duplicates (a repeat
    proposal answered from an earlier trial's evaluation, which ``n_trials`` does not count)."""
    counts: Counter = Counter()
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] += 1
        record = read_record(t)
        if t.state == TrialState.COMPLETE and record is not None:
            counts["architectures" if record.counts else "duplicates"] += 1
    order = ("COMPLETE", "architectures", "duplicates", "RUNNING", "WAITING", "PRUNED", "FAIL")
    return {k: counts[k] for k in order if counts.get(k)}


def recent_failures(study: optuna.Study, last: int = 5) -> list[tuple[int, str]]:
    """(trial number, reason) of the last ``last`` failed trials."""
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))[-last:]
    out = []
    for t in failed:
        record = read_record(t)
        out.append((t.number, (record.fail_reason if record else None) or "?"))
    return out


def front_view(study: optuna.Study) -> tuple[Table, str, str]:
    """The feasible non-dominated trials as a table sorted by the first objective; whether
    the study's accuracies separate its architectures beyond seed noise at all
    (``results.verdict.separation``; "" when untestable); and the report's one-sentence
    verdict on the front against the papers' baselines ("" without baselines; on search
    accuracies, ``attnas validate`` re-checks it on the holdout split). One trials frame
    serves all three: it reads every trial's record from storage."""
    from results.frame import objective_names, trials_frame
    from results.verdict import front_comparisons, sentence, study_separation

    df = trials_frame(study)
    names = objective_names(study)
    table = Table(title="Pareto front (feasible trials)")
    table.add_column("#", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    table.add_column("architecture (per stage)")
    if df.empty or "is_pareto" not in df:
        return table, "", ""
    front = df[df["is_pareto"]].drop_duplicates("arch_hash")  # a cached repeat is one network
    for _, row in front.sort_values(names[0]).iterrows():
        tag = f" [dim](baseline {row['baseline']})[/]" if row["is_baseline"] else ""
        table.add_row(str(row["number"]), *(f"{row[n]:.4g}" for n in names), f"{row['label']}{tag}")
    verdict = sentence(front_comparisons(df, names)) if df["is_baseline"].any() else ""
    return table, study_separation(df).sentence(), verdict
