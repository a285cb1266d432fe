"""Small read-only views of a study for the CLI: state counts and the Pareto front table."""

from __future__ import annotations

from collections import Counter

import optuna
from rich.table import Table


def state_counts(study: optuna.Study) -> dict[str, int]:
    counts = Counter(t.state.name for t in study.get_trials(deepcopy=False))
    return {
        k: counts.get(k, 0) for k in ("COMPLETE", "RUNNING", "WAITING", "FAIL") if counts.get(k)
    }


def front_table(study: optuna.Study) -> Table:
    """The feasible non-dominated trials, sorted by the first objective."""
    from results.frame import objective_names, trials_frame

    df = trials_frame(study)
    names = objective_names(study)
    table = Table(title="Pareto front (feasible trials)")
    table.add_column("#", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    table.add_column("architecture (per stage)")
    if df.empty or "is_pareto" not in df:
        return table
    front = df[df["is_pareto"]].drop_duplicates("arch_hash")  # a cached repeat is one network
    for _, row in front.sort_values(names[0]).iterrows():
        tag = f" [dim](baseline {row['baseline']})[/]" if row["is_baseline"] else ""
        table.add_row(str(row["number"]), *(f"{row[n]:.4g}" for n in names), f"{row['label']}{tag}")
    return table
