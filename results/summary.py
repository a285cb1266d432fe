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
    names = study.metric_names or [f"value{i}" for i in range(len(study.directions))]
    table = Table(title="Pareto front")
    table.add_column("#", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    table.add_column("architecture (per stage)")
    best = [
        t for t in study.best_trials if not any(c > 0 for c in t.user_attrs.get("constraints", [0]))
    ]
    for t in sorted(best, key=lambda t: t.values[0]):
        tag = (
            f" [dim](baseline {t.user_attrs['baseline']})[/]" if "baseline" in t.user_attrs else ""
        )
        cells = [f"{v:.4g}" for v in t.values]
        table.add_row(str(t.number), *cells, t.user_attrs.get("label", "?") + tag)
    return table
