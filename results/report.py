"""``attnas report``: the pictures and the summary people look at after a search.

pareto.png  accuracy against latency, FLOPs as colour, the front as a step line, baselines
            labelled by name; report.html the same, interactive (plotly);
hypervolume.png  hypervolume over trials (reference point recorded in summary.md);
stages.png  which attention type and position appear per stage on the front;
summary.md  the front as a table, and the best searched placement against the best uniform
            baseline (with `attnas validate` numbers when present).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from results.export import arch_of, baseline_source, inferred_modules  # noqa: E402
from results.frame import (  # noqa: E402
    cost_column,
    objective_intervals,
    objective_names,
    trials_frame,
    write_trials,
)
from results.pareto import (  # noqa: E402
    hypervolume,
    hypervolume_history,
    knee_point,
    pareto_mask,
    reference_point,
)
from results.rungs import RUNG_COLUMNS, rung_summaries, rung_table_rows  # noqa: E402
from results.verdict import (  # noqa: E402
    Comparison,
    compare,
    front_comparisons,
    pooled_seed_std,
    sentence,
    study_separation,
    table_md,
)

ACCURACY = "accuracy"


def _directions(study: optuna.Study) -> list[str]:
    return [d.name.lower() for d in study.directions]


def pareto_figure(df: pd.DataFrame, names: list[str]) -> plt.Figure:
    """The figure itself (tests read back what it draws: gids name the artists)."""
    ok = df[df["feasible"]]
    cost = cost_column(ok, names)
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    sc = ax.scatter(
        ok[cost],
        ok[ACCURACY],
        c=ok["flops"] / 1e6,
        cmap="viridis",
        s=28,
        alpha=0.8,
        edgecolors="none",
        label="trials",
    )
    sc.set_gid("trials")
    fig.colorbar(sc, ax=ax, label="MFLOPs (multiply-adds)")
    front = ok[ok["is_pareto"]].sort_values(cost)
    (line,) = ax.step(
        front[cost],
        front[ACCURACY].cummax(),
        where="post",
        color="crimson",
        lw=1.6,
        label="Pareto front",
    )
    line.set_gid("front-line")
    members = ax.scatter(
        front[cost], front[ACCURACY], facecolors="none", edgecolors="crimson", s=70
    )
    members.set_gid("front")
    base = ok[ok["is_baseline"]].drop_duplicates("baseline")
    marks = ax.scatter(
        base[cost],
        base[ACCURACY],
        marker="s",
        facecolors="none",
        edgecolors="black",
        s=60,
        label="uniform baselines (papers)",
    )
    marks.set_gid("baselines")
    for _, r in base.iterrows():
        ax.annotate(
            str(r["baseline"]),
            (r[cost], r[ACCURACY]),
            textcoords="offset points",
            xytext=(5, -10),
            fontsize=8,
        )
    bad = df[(df["state"] == "COMPLETE") & ~df["feasible"]]
    if len(bad):
        rej = ax.scatter(
            bad[cost],
            np.full(len(bad), ok[ACCURACY].min()),
            marker="x",
            color="grey",
            label="rejected by a constraint (untrained)",
        )
        rej.set_gid("rejected")
    ax.set_xlabel(cost.replace("_", " "))
    ax.set_ylabel("validation accuracy (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("Accuracy against cost")
    fig.tight_layout()
    return fig


def target_frames(df: pd.DataFrame, names: list[str]) -> dict[str, pd.DataFrame]:
    """For each latency target the study measured but does not optimise, the trial table
    with its front recomputed on (accuracy, latency_rel@target): one front per target."""
    cost = cost_column(df[df["feasible"]], names)
    out = {}
    for col in [c for c in df.columns if c.startswith("latency_rel@") and "_" not in c[12:]]:
        if col == cost or df.loc[df["feasible"], col].isna().all():
            continue
        view = df.copy()
        ok = view["feasible"].to_numpy(dtype=bool)
        pair = [ACCURACY, col]
        values = view.loc[ok, pair].to_numpy(dtype=float)
        front = pareto_mask(values, ["maximize", "minimize"], objective_intervals(view[ok], pair))
        view["is_pareto"] = False
        view.loc[ok, "is_pareto"] = front
        out[col.split("@", 1)[1]] = view
    return out


def pareto_png(df: pd.DataFrame, names: list[str], path: Path) -> Path:
    fig = pareto_figure(df, names)
    fig.savefig(path)
    plt.close(fig)
    return path


def baseline_sources(study: optuna.Study, df: pd.DataFrame) -> dict[str, str]:
    """Each baseline that ran: where its placement and settings come from."""
    base = df[df["feasible"] & df["is_baseline"]].drop_duplicates("baseline")
    return {
        r["baseline"]: baseline_source(study, int(r["number"]), r["baseline"])
        for _, r in base.iterrows()
    }


def report_html(
    df: pd.DataFrame,
    names: list[str],
    path: Path,
    sources: dict[str, str] | None = None,
    figures: list[str] | None = None,
) -> Path:
    import plotly.express as px

    ok = df[df["feasible"]].copy()
    cost = cost_column(ok, names)
    ok["kind"] = np.where(
        ok["is_baseline"], "baseline", np.where(ok["is_pareto"], "front", "trial")
    )
    fig = px.scatter(
        ok,
        x=cost,
        y=ACCURACY,
        color="kind",
        symbol="kind",
        hover_data=["number", "label", "flops", "params", "baseline"],
        title="attnas: accuracy against cost (hover for the architecture)",
    )
    front = ok[ok["is_pareto"]].sort_values(cost)
    fig.add_scatter(
        x=front[cost],
        y=front[ACCURACY].cummax(),
        mode="lines",
        line_shape="hv",
        name="Pareto front",
    )
    comparisons = front_comparisons(df, names)
    rows = "".join(
        f"<tr><td>{c.trial}</td><td>{html.escape(c.label)}</td><td>{c.cost:.4g}</td>"
        + (
            f"<td>{html.escape(str(c.baseline))} (trial {c.baseline_trial})</td>"
            f"<td>{c.difference:+.4f}</td><td>{_fmt(c.stderr)}</td>"
            f"<td>{'yes' if c.beyond_noise else 'no'}</td>"
            if c.baseline is not None
            else "<td>none as cheap</td><td>-</td><td>-</td><td>-</td>"
        )
        + "</tr>"
        for c in comparisons
    )
    separated = study_separation(df).sentence()
    verdict = (
        "<h2>Each front point against the papers</h2>"
        + "".join(f"<p>{html.escape(t)}</p>" for t in (separated, sentence(comparisons)) if t)
        + (
            f"<table border=1 cellpadding=4><tr><th>trial</th><th>architecture</th><th>{cost}</th>"
            "<th>best baseline at equal or lower cost</th><th>accuracy difference</th>"
            f"<th>standard error</th><th>beyond 2 sigma</th></tr>{rows}</table>"
            if comparisons
            else ""
        )
    )
    papers = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(source)}</td></tr>"
        for name, source in (sources or {}).items()
    )
    if papers:
        verdict += (
            "<h2>The papers' uniform placements</h2><table border=1 cellpadding=4>"
            f"<tr><th>baseline</th><th>source (paper; table; settings)</th></tr>{papers}</table>"
        )
    page = fig.to_html(include_plotlyjs=True, full_html=True)
    extra = _front_table_html(ok, names) + verdict + _links_html(path.parent, figures or [])
    path.write_text(page.replace("</body>", extra + "</body>"))
    return path


def _front_table_html(ok: pd.DataFrame, names: list[str]) -> str:
    """The Pareto front as a table: what a reader copies from, not hovers for."""
    front = ok[ok["is_pareto"]].drop_duplicates("arch_hash").sort_values(cost_column(ok, names))
    columns = ["number", *names, "label", "baseline", "flops", "params"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in columns) + "</tr>"
        for _, row in front.iterrows()
    )
    return (
        f"<h2>The Pareto front ({len(front)} architectures)</h2>"
        f"<table border=1 cellpadding=4><tr>{head}</tr>{body}</table>"
    )


def _links_html(folder: Path, figures: list[str]) -> str:
    items = "".join(
        f'<li><a href="{html.escape(name)}">{html.escape(name)}</a></li>' for name in figures
    )
    return f"<h2>The other figures and tables in {html.escape(folder.name)}/</h2><ul>{items}</ul>"


def hypervolume_png(
    df: pd.DataFrame, names: list[str], directions: list[str], path: Path
) -> tuple[Path, list[float]]:
    ordered = df.sort_values("number")
    values = ordered[names].to_numpy(dtype=float, copy=True)
    values[~ordered["feasible"].to_numpy()] = np.nan
    finite = values[~np.isnan(values).any(axis=1)]
    ref = reference_point(finite, directions)
    hist = hypervolume_history(values, directions, ref)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(ordered["number"], hist, drawstyle="steps-post")
    ax.set_xlabel("trial number")
    ax.set_ylabel("hypervolume")
    ax.set_title(f"Hypervolume of the front ({', '.join(names)})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path, [float(x) for x in ref]


def stage_label(attention: str, position: str, variant: object = None) -> str:
    """``ela-B@post``: the type (with the ELA variant, which is a different module) and where."""
    if attention == "none":
        return "none"
    name = f"ela-{variant}" if attention == "ela" and isinstance(variant, str) else attention
    return f"{name}@{position}"


def stage_counts(df: pd.DataFrame) -> dict[int, pd.Series]:
    """Per stage, how many distinct front architectures use each type@position."""
    front = df[df["is_pareto"]].drop_duplicates("arch_hash")
    stages = sorted(
        {
            int(c[5:].split("_")[0])
            for c in df.columns
            if c.startswith("stage") and c.endswith("_attention")
        }
    )
    counts = {}
    for i in stages:
        labels = [
            stage_label(a, p, v)
            for a, p, v in zip(
                front[f"stage{i}_attention"],
                front[f"stage{i}_position"],
                front[f"stage{i}_variant"],
                strict=True,
            )
        ]
        counts[i] = pd.Series(labels, dtype=object).value_counts().sort_values()
    return counts


def stages_png(df: pd.DataFrame, path: Path) -> Path:
    counts = stage_counts(df)
    fig, axes = plt.subplots(1, len(counts), figsize=(3.2 * len(counts), 3.6), dpi=120, sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (i, c) in zip(axes, counts.items(), strict=True):
        ax.barh(c.index, c.values, color="steelblue")
        ax.set_title(f"stage {i}")
        ax.set_xlabel("front members")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle("Attention type and position on the Pareto front")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _md(label: str) -> str:
    """Stage labels are joined by ' | ', which would split a Markdown table cell."""
    return f"`{label.replace(' | ', ' / ')}`"


def _seeds(row: pd.Series) -> str:
    n = row.get("n_seeds")
    return "seeds unrecorded" if n is None or pd.isna(n) else f"{int(n)} seed{'s' * (int(n) != 1)}"


def _difference(c: Comparison) -> str:
    """The accuracy difference with its standard error and whether it exceeds two of them
    (``Comparison.beyond_noise``, the verdicts' one rule)."""
    if math.isnan(c.stderr):
        return f"{c.difference:+.4f} (no seed spread to judge it by)"
    within = "beyond" if c.beyond_noise else "within"
    return f"{c.difference:+.4f} ± {c.stderr:.4f} ({within} 2 standard errors)"


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if np.isnan(v) else f"{v:.4g}"
    return str(v)


def summary_md(
    study: optuna.Study,
    df: pd.DataFrame,
    names: list[str],
    ref: list[float],
    validation: dict | None,
) -> str:
    directions = _directions(study)
    ok = df[df["feasible"]]
    front = ok[ok["is_pareto"]].drop_duplicates("arch_hash").sort_values(names[0], ascending=False)
    cost = cost_column(ok, names)
    hv = hypervolume(ok[names].to_numpy(dtype=float), directions, np.array(ref))
    lines = [
        f"# attnas report: {study.study_name}",
        "",
        f"{(df['state'] == 'COMPLETE').sum()} complete trials, {(df['state'] == 'FAIL').sum()} failed; "
        f"objectives: {', '.join(f'{n} ({d})' for n, d in zip(names, directions, strict=True))}.",
        f"Hypervolume {hv:.4g} with reference point {[round(x, 6) for x in ref]} (minimisation space).",
        "",
        "![Pareto front](pareto.png)",
        "",
        "## Pareto front",
        "",
        "| trial | " + " | ".join(names) + " | flops | params | architecture |",
        "|---|" + "---|" * len(names) + "---|---|---|",
    ]
    for _, r in front.iterrows():
        tag = f" (baseline {r['baseline']})" if r["is_baseline"] else ""
        lines.append(
            f"| {r['number']} | "
            + " | ".join(_fmt(r[n]) for n in names)
            + f" | {r['flops'] / 1e6:.2f}M | {r['params'] / 1e6:.3f}M | {_md(r['label'])}{tag} |"
        )
    intervals = objective_intervals(front, names)
    knee = front.iloc[knee_point(front[names].to_numpy(dtype=float), directions, intervals)]
    lines += [
        "",
        f"**Knee** (best balance of the objectives): trial {knee['number']} "
        f"{_md(knee['label'])}, "
        + ", ".join(f"{n} {_fmt(knee[n])}" for n in names)
        + ". Export it with `attnas export STUDY_DIR --pick knee`.",
    ]
    base = ok[ok["is_baseline"]]
    searched = ok[~ok["is_baseline"]]
    lines += ["", "## Best searched placement against the best uniform baseline", ""]
    if len(base) and len(searched):
        b = base.sort_values([ACCURACY, cost], ascending=[False, True]).iloc[0]
        s = searched.sort_values([ACCURACY, cost], ascending=[False, True]).iloc[0]
        s_p = pooled_seed_std(ok.drop_duplicates("arch_hash"))
        lines += [
            f"- best baseline: **{b['baseline']}** (trial {b['number']}): accuracy {_fmt(b[ACCURACY])} "
            f"({_seeds(b)}), {cost} {_fmt(b[cost])}",
            f"- best searched: trial {s['number']} `{s['label']}`: accuracy {_fmt(s[ACCURACY])} "
            f"({_seeds(s)}), {cost} {_fmt(s[cost])}",
            f"- difference: accuracy {_difference(compare(s, b, s_p, cost))}, "
            f"{cost} {s[cost] - b[cost]:+.4g}",
        ]
    if len(base):
        lines += ["", "## The papers' uniform placements", ""]
        lines += [
            "| baseline | trial | accuracy | " + cost + " | source |",
            "|---|---|---|---|---|",
        ]
        for _, r in base.drop_duplicates("baseline").iterrows():
            source = baseline_source(study, int(r["number"]), r["baseline"])
            lines.append(
                f"| {r['baseline']} | {r['number']} | {_fmt(r[ACCURACY])} | {_fmt(r[cost])} "
                f"| {source} |"
            )
    comparisons = front_comparisons(df, names)
    lines += ["", "## Each front point against the papers (search accuracies)", ""]
    if separated := study_separation(df).sentence():
        lines += [separated, ""]
    lines.append(sentence(comparisons))
    if comparisons:
        lines += ["", *table_md(comparisons, cost)]
    if validation:
        lines += [
            "",
            f"## Held-out validation ({validation['seeds']} seeds, split never scored by the search)",
            "",
            "| trial | role | mean | std | architecture |",
            "|---|---|---|---|---|",
        ]
        for r in validation["rows"]:
            lines.append(
                f"| {r['trial']} | {r['role']} | {r['mean']:.4f} | {r['std']:.4f} | {_md(r['label'])} |"
            )
        if validation.get("verdict"):
            lines += ["", validation["verdict"]]
        if validation.get("comparisons"):
            lines += ["", *table_md([Comparison(**c) for c in validation["comparisons"]], cost)]
    for target, view in target_frames(df, names).items():
        col = f"latency_rel@{target}"
        tf = view[view["feasible"] & view["is_pareto"]].drop_duplicates("arch_hash")
        lines += [
            "",
            f"## Front on latency target `{target}` (measured, not optimised)",
            "",
            f"![front on {target}](pareto_{target}.png)",
            "",
            f"| trial | accuracy | {col} | architecture |",
            "|---|---|---|---|",
            *(
                f"| {r['number']} | {_fmt(r[ACCURACY])} | {_fmt(r[col])} | {_md(r['label'])} |"
                for _, r in tf.sort_values(col).iterrows()
            ),
        ]
    rungs = rung_summaries(study)
    if rungs:
        lines += [
            "",
            "## Successive halving",
            "",
            f"{(df['state'] == 'PRUNED').sum()} trials stopped at a rung (never on a front). "
            "tau: how the rung's accuracy ranks the promoted trials that finished, against their "
            "final accuracy.",
            "",
            "| " + " | ".join(RUNG_COLUMNS) + " |",
            "|" + "---|" * len(RUNG_COLUMNS),
            *("| " + " | ".join(row) + " |" for row in rung_table_rows(rungs)),
        ]
    notes = sorted(
        {n for _, r in front.iterrows() for n in inferred_modules(arch_of(study, int(r["number"])))}
    )
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    lines += ["", "![hypervolume](hypervolume.png)", "", "![stages](stages.png)", ""]
    return "\n".join(lines)


def write_report(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Write the report, the trial table (``trials.csv``) included, into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    df = trials_frame(study)
    if df.empty or not df["feasible"].any():
        raise ValueError("the study has no feasible complete trials to report")
    names = objective_names(study)
    written = [write_trials(study, out_dir)]
    written.append(pareto_png(df, names, out_dir / "pareto.png"))
    for target, view in target_frames(df, names).items():
        written.append(pareto_png(view, [ACCURACY, f"latency_rel@{target}"],
                                  out_dir / f"pareto_{target}.png"))  # fmt: skip
    hv_path, ref = hypervolume_png(df, names, _directions(study), out_dir / "hypervolume.png")
    written.append(hv_path)
    written.append(stages_png(df, out_dir / "stages.png"))
    vpath = out_dir / "validate.json"
    validation = json.loads(vpath.read_text()) if vpath.is_file() else None
    md = out_dir / "summary.md"
    md.write_text(summary_md(study, df, names, ref, validation))
    written.append(md)
    others = [p.name for p in written] + (["validate.json"] if validation else [])
    html_path = out_dir / "report.html"
    written.append(report_html(df, names, html_path, baseline_sources(study, df), others))
    return written
