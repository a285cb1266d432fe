"""Render BENCHMARKS.md from the latest bench/results/*.json, so the document never holds a
number that no script produced. Run: .venv/bin/python bench/report.py
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
OUT = ROOT.parent / "BENCHMARKS.md"


def _load(name: str) -> dict[str, Any] | None:
    path = ROOT / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _table(header: list[str], rows: list[list[Any]]) -> str:
    # Labels join stages with " | ", which would split a cell: GitHub's tables take "\|" as a
    # literal pipe, inside code spans too.
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _machine(hw: dict[str, str] | None) -> str:
    if not hw:
        return "unknown machine"
    keys = ("name", "torch")
    return ", ".join(f"{k} {hw[k]}" for k in keys if k in hw)


def throughput(r: dict[str, Any]) -> str:
    rows = [
        [e["arch"], f"{e['seconds']:.1f}", f"{e['train_seconds']:.1f}", f"{e['accuracy']:.3f}"]
        for e in r["evaluations"]
    ]
    s = r["settings"]
    text = [
        f"Quickstart settings ({s['epochs']} epochs x {len(s['seeds'])} seeds, "
        f"{s['threads']} training thread), one worker; {_machine(r['hardware'])}.",
        "",
        _table(["architecture", "s / evaluation", "of which training s", "accuracy"], rows),
        "",
        f"**{r['evaluations_per_hour_per_worker']:.0f} evaluations per hour per worker.**",
        "",
    ]
    gpu = r.get("gpu")
    if gpu:
        rows = [
            [g["epochs"], f"{g['seconds']:.1f}", f"{g['s_per_epoch']:.2f}", g["data"]]
            for g in gpu["schedule"]
        ]
        text += [
            f"GPU: {_machine(gpu['hardware'])}; ResNet-18 (cifar stem), bf16, channels_last, "
            "batch 512, data on the device.",
            "",
            _table(["epochs", "seconds", "s / epoch", "data"], rows),
            "",
            "Published anchors, on a different GPU (A100): ResNet-18 CIFAR-10 about 2 s/epoch; "
            "airbench 94% in about 3.3 s.",
        ]
    else:
        checked = _load("gpu_check")
        text.append(
            "GPU: ResNet-18 CIFAR-shaped epochs are in the GPU check below."
            if checked and checked.get("device") == "cuda"
            else "GPU: not measured; no GPU was lent to the machine that produced this file."
        )
    return "\n".join(text)


def overhead(r: dict[str, Any]) -> str:
    k = r["distinct_trained"]
    rows = [
        [
            "bare process pool, no gate",
            f"{r['bare_ungated_seconds']:.1f}",
            f"{3600 * k / r['bare_ungated_seconds']:.0f}",
            f"{r['gate_cost'] * -1 / (1 + r['gate_cost']):+.1%}",
        ],
        [
            "bare process pool + latency gate",
            f"{r['bare_gated_seconds']:.1f}",
            f"{r['evaluations_per_hour_bare_gated']:.0f}",
            "baseline",
        ],
        [
            "`attnas search` (Ray Tune + Optuna + checkpoints)",
            f"{r['search_seconds']:.1f}",
            f"{r['evaluations_per_hour_search']:.0f}",
            f"{r['overhead_total']:+.1%}",
        ],
        [
            "... plus starting a local Ray",
            f"{r['search_seconds'] + r['ray_startup_seconds']:.1f}",
            "",
            f"{r['overhead_total_with_startup']:+.1%}",
        ],
    ]
    return "\n".join(
        [
            f"{k} distinct architectures, concurrency {r['concurrency']}, {r['epochs']} epochs x "
            f"{len(r['seeds'])} seeds, the same architectures in every run.",
            "",
            _table(["run", "seconds", "evaluations / hour", "vs bare + gate"], rows),
            "",
            f"Overhead per trial: {r['overhead_per_trial_s']:+.2f} s. Goal: under 5%.",
        ]
    )


def _table_noise(table: str) -> str:
    """The no-attention row's latency_rel should be 1: its distance from 1 is the noise level
    of the table's latency column, which decides how fine a front the table can resolve."""
    import csv

    path = ROOT.parent / table
    if not path.is_file():
        return ""
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if set(r["label"].split(" | ")) == {"none"}]
    if not rows:
        return ""
    rel = float(rows[0]["latency_rel"])
    return (
        f"The table's no-attention row reads latency_rel {rel:.3f} where 1 is exact: that is the "
        "noise level of its latency column."
    )


def _hv_cell(e: dict[str, Any], k: int) -> str:
    """Mean ± 95% CI (older results: ± std), then the difference from random with its
    Welch 95% interval, in bold where it excludes zero."""
    spread = e.get(f"hv@{k}_ci95", e[f"hv@{k}_std"])
    text = f"{e[f'hv@{k}']:.3f} ± {spread:.3f}"
    if f"vs_random@{k}" in e:
        diff = f"{e[f'vs_random@{k}']:+.3f} ± {e[f'vs_random@{k}_ci95']:.3f}"
        text += f" ({'**' + diff + '**' if e[f'beats_random@{k}'] else diff})"
    return text


def _verdict(eff: list[dict[str, Any]], ks: list[int]) -> str:
    """Which samplers beat random beyond its interval, at each checkpoint where any does."""
    if not any(f"vs_random@{k}" in e for e in eff for k in ks):
        return ""
    said = []
    for k in ks:
        better = [e["sampler"] for e in eff if e.get(f"beats_random@{k}")]
        if better:
            said.append(f"after {k} architectures {', '.join(better)}")
    k = ks[-1]
    if said:
        last = (
            ""
            if any(e.get(f"beats_random@{k}") for e in eff)
            else (
                f"; after {k} none does (all samplers at {min(e[f'hv@{k}'] for e in eff):.3f}-"
                f"{max(e[f'hv@{k}'] for e in eff):.3f} of the true hypervolume)"
            )
        )
        return f"Beyond random's 95% interval: {'; '.join(said)}{last}."
    return (
        f"After {k} architectures no sampler beats random beyond its 95% interval: on this "
        "table the samplers cannot be told apart."
    )


def _stale_table(r: dict[str, Any], epochs: int = 3, rerun: str = "bench/samplers.py") -> str:
    """A warning when the replay predates the evaluation its table is now built with."""
    sys.path.insert(0, str(ROOT))
    import tabular

    if r.get("table_fingerprint") == tabular.fingerprint(epochs):
        return ""
    return (
        "**Stale:** these figures were replayed against a table built with earlier evaluation "
        f"settings (fingerprint {r.get('table_fingerprint')}, now {tabular.fingerprint(epochs)}"
        f"); rebuild the table and rerun `{rerun}`.\n\n"
    )


def samplers(r: dict[str, Any]) -> str:
    eff = r["efficiency"]
    ks = sorted(int(key[3:]) for key in eff[0] if key.startswith("hv@") and "_" not in key)
    front = r.get("true_front_size")
    rows = [
        [
            e["sampler"],
            *(_hv_cell(e, k) for k in ks),
            *(f"{e[f'front@{k}']:.0%}" for k in ks),
            f"{e['distinct_archs']:.0f}",
            e["seeds"],
        ]
        for e in eff
    ]
    cost = r["cost"]
    sizes = sorted(int(key.split("@")[1]) for key in cost[0] if key.startswith("s_per_ask@"))
    crow = [
        [
            c["sampler"],
            *(
                f"{c[f's_per_ask@{n}'] * 1000:.1f} ms"
                if c[f"s_per_ask@{n}"] is not None
                else f"> {r['cost_limit_s']:.0f} s"
                for n in sizes
            ),
        ]
        for c in cost
    ]
    return _stale_table(r) + "\n".join(
        [
            f"Replayed against `{r['table']}` ({r['table_rows']} architectures, every one of the "
            "sub-space evaluated once); hypervolume of (accuracy, latency_rel) as a fraction "
            "of the table's true front, mean ± 95% CI over seeds (in brackets: the difference "
            "from random with its Welch 95% interval, bold where it excludes zero); 'k' counts "
            "distinct architectures, as `n_trials` does. Optuna's samplers run with the "
            "settings `attnas search` gives them (NSGA-II population 8, multivariate TPE with "
            f"constant liar); no baselines enqueued. The table's true front has {front} "
            "architectures; 'true front found' is the share of them a run has evaluated.",
            "",
            _table(
                [
                    "sampler",
                    *(f"HV after {k}" for k in ks),
                    *(f"true front found after {k}" for k in ks),
                    "distinct archs seen",
                    "seeds",
                ],
                rows,
            ),
            "",
            _verdict(eff, ks),
            "",
            _table_noise(r["table"]),
            "",
            f"Cost of one ask + suggest + tell (optuna {r['optuna']}, in-memory study):",
            "",
            _table(["sampler", *(f"{n:,} finished trials" for n in sizes)], crow),
        ]
    )


def measurement(r: dict[str, Any]) -> str:
    lat = [
        [
            x["arch"],
            f"{x['latency_ms_median']:.3f}",
            f"{x['iqr_over_median_per_run']:.3f}",
            f"{x['abs_spread']:.1%}",
            f"{x['latency_rel_median']:.3f}",
            f"{x['rel_iqr_over_median_per_run']:.3f}",
            f"{x['rel_spread']:.1%}",
            f"{x['seconds_median']:.1f}" if "seconds_median" in x else "-",
        ]
        for x in r["latency"]
    ]
    itself = r.get("reference_against_itself")
    if itself:
        rel = itself["latency_rel_runs"]
        lat.append(
            [
                f"reference against itself, {itself['runs']} fresh processes",
                "",
                "",
                "",
                f"{statistics.median(rel):.3f} ({min(rel):.3f}-{max(rel):.3f})",
                "",
                f"{itself['within_2pct']:.0%} of runs within 1.00 ± 0.02",
                f"{statistics.median(itself['seconds_runs']):.1f}",
            ]
        )
    fl = [
        [
            x["arch"],
            x["image_size"],
            f"{x['torch_flops']:,}",
            f"{2 * x['ours_matmul_conv_macs']:,}",
            f"{x['ratio_2macs_over_torch']:.6f}",
            f"{x['elementwise_share']:.2%}",
        ]
        for x in r["flops"]
    ]
    runs = r["latency"][0]["runs"] if r["latency"] else 0
    return "\n".join(
        [
            f"Latency, each model measured {runs} times (batch 1, paired A/B against the same "
            f"network without attention, alternating every forward, sampled until the ratio's "
            f"95% interval is within ±{r['latency_settings'].get('rel_ci', 0):.1%} or "
            f"{r['latency_settings'].get('max_seconds', '-')} s); {_machine(r['hardware'])}.",
            "",
            _table(
                [
                    "model",
                    "median ms",
                    "IQR/median within a run",
                    "ms spread over runs",
                    "latency_rel",
                    "rel IQR/median within a run",
                    "rel spread over runs",
                    "seconds per measurement",
                ],
                lat,
            ),
            *_measurement_history(r),
            "",
            "FLOPs: `torch.utils.flop_counter` counts only convolutions and matrix products, "
            "2 per multiply-add. Ours, for the same ops, doubled:",
            "",
            _table(
                [
                    "model",
                    "px",
                    "torch FLOPs",
                    "2 x our conv/linear MACs",
                    "ratio",
                    "what torch leaves out (share of our total)",
                ],
                fl,
            ),
        ]
    )


def fidelity(r: dict[str, Any]) -> str:
    rows = [
        [
            (f"[{a['baseline']}] " if a["baseline"] else "") + a["label"],
            _mean_sd(a["short"]),
            _mean_sd(a["long"]),
            f"{a['latency_rel']:.3f}" if a["latency_rel"] else "-",
        ]
        for a in sorted(r["architectures"], key=lambda a: -sum(a["long"]) / len(a["long"]))
    ]
    shifts = [
        [
            group,
            f"{g['mean_rank_shift']:+.2f}",
            f"{g['stderr']:.2f}",
            g["architectures"],
            "yes" if g["beyond_2_sigma"] else "no",
            f"{g['random_sets_p']:.2f}" if "random_sets_p" in g else "-",
        ]
        for group, g in r["rank_shift"].items()
    ]
    return "\n".join(
        [
            f"{len(r['architectures'])} architectures of the quickstart space on "
            f"`{r['dataset']}` (every uniform paper baseline, then a seeded random sample), "
            f"{len(r['seeds'])} seeds each, short {r['short_epochs']} epochs against a fixed "
            f"long recipe of {r['long_epochs']} epochs.",
            "",
            f"**Kendall tau {r['kendall_tau']:.3f}, Spearman rho {r['spearman_rho']:.3f}**; "
            f"the long schedule's (accuracy, latency_rel) front found in the short schedule's "
            f"top-{r['top_k']}: {r['long_front_in_short_top_k']:.0%}. Seed sigma (mean over "
            f"architectures): short {r['seed_sigma_short']:.4f}, long {r['seed_sigma_long']:.4f}.",
            *_training_cost(r),
            "",
            *_ceiling(r),
            *_checkpoints(r),
            _table(["architecture", "short acc", "long acc", "latency_rel"], rows),
            "",
            "Mean rank shift from short to long (positive: ranks worse after long training), "
            "with its standard error over seeds, and how often a random set of as many of these "
            "architectures shifts at least as far (p; a permutation test of the group's label). "
            "Two standard errors over seeds ask whether these particular architectures shift, "
            "which random sets of them often do where short and long rank differently; only a "
            "small p says "
            "that the type or position itself is favoured or penalised by the short schedule:",
            "",
            _table(
                ["group", "mean shift", "stderr", "architectures", "beyond 2 sigma", "p"], shifts
            ),
            *_recipes(r),
            *_shorter_references(r),
        ]
    )


def _task_results(main: dict[str, Any], pattern: str) -> list[dict[str, Any]]:
    """The stored fidelity results matching ``pattern`` that were trained on ``main``'s task,
    quick CI runs left out: only those can sit in one table with it."""
    found = [json.loads(p.read_text()) for p in sorted((ROOT / "results").glob(pattern))]
    return [r for r in found if not r.get("quick") and r["dataset"] == main["dataset"]]


def _shorter_references(main: dict[str, Any]) -> list[str]:
    """The long references of shorter benchmarks on the same task, held against this one on
    the architectures they share: whether placements a shorter reference separates still
    differ when trained longer, or only learned faster (shown once, under the longest)."""
    from scipy.stats import kendalltau

    def means(r: dict[str, Any]) -> dict[str, float]:
        return {a["arch_hash"]: statistics.fmean(a["long"]) for a in r["architectures"]}

    found = [
        r
        for r in _task_results(main, "fidelity*.json")
        if r["recipe"] == "config" and r["long_epochs"] < main["long_epochs"]
    ]
    if not found:
        return []
    longest = means(main)
    rows = []
    for r in sorted([main, *found], key=lambda r: r["long_epochs"]):
        own = means(r)
        shared = sorted(set(own) & set(longest))
        tau = kendalltau([own[h] for h in shared], [longest[h] for h in shared]).statistic
        spread = (
            f"{100 * r['long_placement_sd']:.2f} ({100 * r['long_placement_sd_upper']:.2f})"
            if "long_placement_sd" in r
            else "-"
        )
        rows.append(
            [
                r["long_epochs"],
                len(shared),
                f"{r['long_separation_p']:.3g}",
                spread,
                f"{100 * r['seed_sigma_long']:.2f}",
                f"{r['long_seed_tau']:.2f}",
                f"{tau:.2f}" if r is not main else "1",
            ]
        )
    return [
        "",
        f"The long references trained on `{main['dataset']}` side by side, on the architectures "
        f"they share with this {main['long_epochs']}-epoch one (means over their seeds; the "
        "ANOVA, spreads and seed agreement are each reference's own, over all its architectures). "
        "A shorter reference whose placements differ beyond seed noise but rank unlike the "
        "longer one measured how fast they learn, not where they end:",
        "",
        _table(
            [
                "long epochs",
                "archs shared",
                "ANOVA p",
                "placement sd, points (95% bound)",
                "seed sd, points",
                "seed against seed tau",
                f"tau against the {main['long_epochs']}-epoch means",
            ],
            rows,
        ),
    ]


def _training_cost(r: dict[str, Any]) -> list[str]:
    """What the figures cost to train, summed from their stored runs (a result written before
    ``training_seconds`` existed has no such figure)."""
    if "training_seconds" not in r:
        return []
    hours = {k: v / 3600 for k, v in r["training_seconds"].items()}
    return [
        f"Training behind them: {hours['short']:.1f} h of short runs and {hours['long']:.1f} h "
        "of long ones (each run on one thread, summed over the stored runs; `bench/fidelity.py` "
        "runs two at a time)."
    ]


def _recipe_label(r: dict[str, Any]) -> str:
    """A recipe's name, marked where it is a screen (a short schedule longer than a sixth of
    the long recipe), so that no row reads as the benchmark's 6x contract."""
    name = r.get("recipe", "config")
    return (
        f"{name} (screen, {r['long_epochs'] / r['short_epochs']:.1f}x)" if r.get("screen") else name
    )


def _recipes(main: dict[str, Any]) -> list[str]:
    """Candidate short recipes scored against the same stored long runs, side by side."""
    from evaluators.fidelity import SHIFT_P

    # A recipe is scored against its own task's long runs, so only those sit in one table.
    found = [main] + [
        r
        for r in _task_results(main, "fidelity*_recipe_*.json")
        if r["long_epochs"] == main["long_epochs"]
    ]
    if len(found) < 2:
        return []
    from evaluators.train import ADDED_LATER

    # A recipe stored before a setting existed ran with the value that setting now gives for
    # "as before", so it is compared as such.
    base = ADDED_LATER | found[0]["short_recipe"]
    rows = []
    for r in found:
        recipe = ADDED_LATER | r["short_recipe"]
        changed = {k: v for k, v in recipe.items() if base.get(k) != v}
        beyond = sum(bool(g["beyond_2_sigma"]) for g in r["rank_shift"].values())
        ps = [g["random_sets_p"] for g in r["rank_shift"].values() if "random_sets_p" in g]
        beyond_random = f"{sum(p < SHIFT_P for p in ps)} of {len(ps)}" if ps else "-"
        rows.append(
            [
                _recipe_label(r),
                ", ".join(f"{k}={v}" for k, v in changed.items()) or "(the config's)",
                len(r["architectures"]),
                len(r["seeds"]),
                f"{r['kendall_tau']:.3f}",
                f"{r['tau_ceiling']:.2f}" if "tau_ceiling" in r else "-",
                _unlimited_cell(r),
                f"{r['short_held_out_tau']:.2f}" if "short_held_out_tau" in r else "-",
                f"{r['spearman_rho']:.3f}",
                f"{r['long_front_in_short_top_k']:.0%}",
                f"{r['seed_sigma_short']:.4f}",
                f"{beyond} of {len(r['rank_shift'])}",
                beyond_random,
            ]
        )
    header = ["recipe", "short settings changed", "archs", "seeds", "tau"]
    header += ["tau seed noise allows"]
    header += ["tau unlimited seeds would approach (95%)"]
    header += ["held-out tau"]
    header += ["rho", "front in top-k"]
    header += ["short seed sigma", "groups shifted > 2 sigma", "beyond random sets"]
    screens = (
        [
            "",
            "A recipe marked screen trains longer than a sixth of the long recipe (`--screen`): "
            "it says whether a longer short schedule is worth a longer reference, and is not "
            "the benchmark's 6x contract, whose targets only a 6x run can meet.",
        ]
        if any(r.get("screen") for r in found)
        else []
    )
    return [
        "",
        "Short recipes compared against the same long runs (each a `--recipe` run of "
        "`bench/fidelity.py`; the long recipe is never tuned):",
        "",
        _table(header, rows),
        *screens,
        *_type_shifts(found),
    ]


def _unlimited_cell(r: dict[str, Any]) -> str:
    """``unlimited_seeds_tau`` with its interval, for a table cell."""
    if "unlimited_seeds_tau" not in r:
        return "-"
    low, high = r["unlimited_seeds_tau_ci"]
    return f"{r['unlimited_seeds_tau']:.2f} ({low:.2f} to {high:.2f})"


def _type_shifts(found: list[dict[str, Any]]) -> list[str]:
    """Each recipe's mean rank shift per attention type, side by side. Every recipe is scored
    against the same long runs of the same architectures, so a type that shifts the same way
    under every recipe may be those architectures' own long ranks: only the permutation test
    (†) speaks for the type."""
    from evaluators.fidelity import SHIFT_P

    types = sorted({g for r in found for g in r["rank_shift"] if g.startswith("type:")})

    def cell(g: dict[str, Any] | None) -> str:
        if g is None:
            return "-"
        mark = " *" if g["beyond_2_sigma"] else ""
        mark += " †" if g.get("random_sets_p", 1.0) < SHIFT_P else ""
        return f"{g['mean_rank_shift']:+.1f} ± {g['stderr']:.1f}{mark}"

    rows = [[_recipe_label(r), *(cell(r["rank_shift"].get(t)) for t in types)] for r in found]
    return [
        "",
        "Mean rank shift per attention type under each recipe (positive: ranks worse after "
        "long training than the short recipe ranked it; ± its standard error over seeds, "
        f"* beyond 2 sigma, † shifts further than random sets of as many architectures, p < "
        f"{SHIFT_P}):",
        "",
        _table(["recipe", *(t.removeprefix("type:") for t in types)], rows),
    ]


def _moved_between_runs(history: list[dict[str, Any]]) -> dict[str, float]:
    """For each name in the last run's ``latency_rel``, (max - min) / median of its values
    over the runs that measured it, where at least two did."""
    return {
        name: (max(v) - min(v)) / statistics.median(v)
        for name in history[-1]["latency_rel"]
        if len(v := [h["latency_rel"][name] for h in history if name in h["latency_rel"]]) > 1
    }


def _measurement_history(r: dict[str, Any]) -> list[str]:
    """The same models run by run: how far latency and latency_rel move between sittings,
    against how far they move between the runs of one sitting (the table above), and in
    which sittings the noise floor held."""
    from measurement import ITSELF_TARGET, REL_IQR_TARGET, REL_SPREAD_TARGET, noise_floor_met

    history = r.get("history", [])
    if len(history) < 2:
        return []
    models = list(history[-1]["latency_rel"])
    verdicts = [noise_floor_met(h) for h in history]
    rows = [
        [
            h["measured_at"] or "not recorded",
            *(
                f"{h['latency_ms'][m]:.2f} / {h['latency_rel'][m]:.3f}"
                if m in h["latency_rel"]
                else "-"
                for m in models
            ),
            f"{h['rel_iqr_worst']:.1%} / {h['rel_spread_worst']:.1%}"
            if "rel_iqr_worst" in h
            else "-",
            f"{h['itself_within_2pct']:.0%}" if h["itself_within_2pct"] is not None else "-",
            {True: "yes", False: "no", None: "-"}[met],
        ]
        for h, met in zip(history, verdicts, strict=True)
    ]
    moved = _moved_between_runs(history)
    worst = max(moved, key=lambda m: moved[m])
    sitting = max(x["rel_spread"] for x in r["latency"])
    judged = [v for v in verdicts if v is not None]
    held = (
        f" The noise floor (for every model, latency_rel's IQR/median within a run at most "
        f"{REL_IQR_TARGET:.0%} and its spread over runs at most {REL_SPREAD_TARGET:.0%}; the "
        f"reference against itself within 1.00 ± 0.02 in at least {ITSELF_TARGET:.1%} of fresh "
        f"processes) held in {sum(judged)} of the {len(judged)} sittings that recorded those "
        "figures; a sitting's noise comes with its host."
        if judged
        else ""
    )
    return [
        "",
        f"The same models run by run, one row per run of this script (median ms / "
        f"latency_rel; the last row is the table above). Between runs latency_rel moved by up "
        f"to {moved[worst]:.1%} ({worst}); within the last sitting its spread over runs was at "
        f"most {sitting:.1%}.{held}",
        "",
        _table(
            [
                "measured",
                *models,
                "worst rel IQR/median / spread",
                "itself within ± 0.02",
                "noise floor met",
            ],
            rows,
        ),
    ]


def _checkpoints(r: dict[str, Any]) -> list[str]:
    """How early the long recipe settles its own ranking, against the short schedule's."""
    if "settling_gap_ci" not in r or math.isnan(r["long_held_out_tau"]):
        return []
    short, n = r["stopped_epoch"], len(r["architectures"])
    at = {x["epoch"]: x["held_out_tau"] for x in r["long_checkpoint_tau"]}
    shown = sorted({1, *range(short, r["long_epochs"] + 1, short)} & set(at))
    (s_lo, s_hi), (r_lo, r_hi) = r["settling_gap_ci"], r["recipe_gap_ci"]
    settling = (
        f"its ranking is still being made after epoch {short} (the gap to its end, 95% "
        f"interval {s_lo:+.2f} to {s_hi:+.2f}, excludes 0): a {short}-epoch recipe would have "
        f"to rank better than the long recipe itself does at that length (compare the "
        "recipes' held-out taus below); a longer short schedule, or a task learned sooner, "
        "is the likelier fix"
        if s_lo > 0
        else f"stopped at epoch {short} it cannot be told from its end (the gap's 95% interval "
        f"{s_lo:+.2f} to {s_hi:+.2f} includes 0)"
    )
    recipe = (
        f"the short schedule ranks worse than the long recipe stopped at the same length "
        f"(95% interval {r_lo:+.2f} to {r_hi:+.2f}): a gap of its own, which a recipe change "
        "can close"
        if r_lo > 0
        else f"the short schedule cannot be told from the long recipe stopped at the same "
        f"length (95% interval of the gap {r_lo:+.2f} to {r_hi:+.2f})"
    )
    return [
        f"How early the long recipe settles its own ranking (Kendall tau on held-out seeds: "
        f"each seed's long end against the other seeds' mean, so no seed's noise is on both "
        f"sides; intervals from {n} architectures resampled, paired). The long end against "
        f"itself reads {r['long_held_out_tau']:.2f}, the most this measure can show. The long "
        f"recipe stopped at epoch {short} (the short schedule's length, and what a "
        f"successive-halving rung there sees) reads {r['stopped_held_out_tau']:.2f}, and the "
        f"short schedule {r['short_held_out_tau']:.2f}. So {settling}; and {recipe}.",
        "",
        _table(
            ["long recipe stopped at epoch", *map(str, shown)],
            [["held-out tau against its end", *(f"{at[k]:.2f}" for k in shown)]],
        ),
        "",
    ]


def _ceiling(r: dict) -> list[str]:
    """The noise ceiling: how far the long schedule agrees with itself across seeds."""
    if "long_seed_tau" not in r:
        return []
    from evaluators.fidelity import (
        SEPARATION_P,
        gap_is_bias,
        seed_outlook,
        seeds_needed,
        spread_sentence,
    )

    p = r["long_separation_p"]
    verdict = (
        "the long schedule separates these placements beyond seed noise"
        if p < SEPARATION_P
        else "the long schedule does **not** separate these placements beyond seed noise, so "
        "no short schedule can be tuned to rank them: the task, the validation split or the "
        "number of seeds must change first"
    )
    lines = [
        f"Seed against seed (mean Kendall tau between two seeds' rankings): short "
        f"{r['short_seed_tau']:.3f}, long {r['long_seed_tau']:.3f}. One-way ANOVA of the long "
        f"accuracies over architectures: F {r['long_separation_f']:.2f}, p {p:.3g}: {verdict}.",
        "",
    ]
    if "long_placement_sd" in r:
        lines[-2] += f" As a size: {spread_sentence(r)}."
    if "tau_ceiling" in r:
        n = len(r["seeds"])
        if p >= SEPARATION_P:  # no ranking to match: neither bias nor a gap that seeds would close
            gap = "no ranking to match, as the long schedule separates nothing here"
        elif gap_is_bias(r["kendall_tau"], r["tau_ceiling"], len(r["architectures"])):
            gap = (
                "more than two standard errors below it, so the short schedule ranks by "
                "something other than what the long one rewards (bias, not noise): more seeds "
                "would not close that gap"
            )
        else:
            gap = (
                "within two standard errors of it, so seed noise can explain the gap (which "
                "does not show that no bias is behind it)"
            )
        lines += [
            f"What these seeds allow (each seed agreement turned into the reliability of a "
            f"{n}-seed mean, Spearman's correction for attenuation, Greiner's relation between "
            f"tau and r): if both schedules ranked by the same quality and differed by seed "
            f"noise only, tau(short, long) would be about **{r['tau_ceiling']:.2f}**; a "
            f"noiseless short schedule would reach about {r['tau_ceiling_long']:.2f} against "
            f"this {n}-seed long reference. Measured {r['kendall_tau']:.3f}: {gap}. At the "
            f"same seed agreements, {seeds_needed(r)} (the same count at both schedules).",
            "",
        ]
        if "unlimited_seeds_tau" in r:
            lines[-2] += (
                f" Corrected for both schedules' seed noise instead of assuming no bias, "
                f"{seed_outlook(r)}."
            )
            if not math.isnan(r["unlimited_seeds_tau"]):
                lines[-2] += (
                    " The interval resamples architectures; a resample whose seeds do not "
                    "agree at all bounds nothing and widens it to both ends."
                )
    return lines


def _mean_sd(values: list[float]) -> str:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return f"{mean:.4f}"
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.4f} ± {sd:.4f}"


def multifidelity(r: dict[str, Any]) -> str:
    """The main replay, then each other stored replay (``multifidelity_*.json``: a longer
    table with more rungs, or another eta)."""
    others = [
        json.loads(p.read_text()) for p in sorted((ROOT / "results").glob("multifidelity_*.json"))
    ]
    parts = [_replay(r)]
    parts += ["", *_rungs_on_long_recipe(r)]
    for other in others:
        if not other.get("quick"):
            title = f"{other['epochs_per_trial']} epochs per trial, eta {other['eta']}"
            same_table = other.get("table_fingerprint") == r.get("table_fingerprint")
            within = other.get("within_front", "crowding")
            if within != r.get("within_front", "crowding"):
                title += f", {within} contribution within a front"
            if other.get("fill_repeats"):
                title += ", each repeat proposal followed by a random unanswered architecture"
            parts += ["", f"### {title}", "", _replay(other, signal=not same_table)]
            if same_table and other["eta"] == r["eta"] and within != "crowding":
                parts += ["", _within_front_comparison(r, other)]
            if same_table and other["eta"] == r["eta"] and other.get("fill_repeats"):
                parts += ["", _fill_comparison(r, other)]
    return "\n".join(parts)


FIDELITY_TASKS = ("fidelity", "fidelity_fashion_mnist16", "fidelity_digits16")


def _rungs_on_long_recipe(main: dict[str, Any]) -> list[str]:
    """What halving's rungs would see on a longer schedule, from the fidelity runs' per-epoch
    curves: for each task, the held-out-seed tau between the 30-epoch recipe stopped at each
    rung and its end, beside the saving stopping alone would allow there.

    Why: a goal far below the saving one rung allows on a 3-epoch table needs a longer
    schedule with several rungs, and those rungs only help if they rank like the end. The
    fidelity runs are the only long per-epoch curves this project has measured, so they say
    whether such a table exists on the tasks at hand before anyone spends a day building it."""
    from multifidelity import GOAL, epochs_per_architecture

    from evaluators.fidelity import TARGET_TAU
    from search.halving import rung_epochs

    found = [_load(name) for name in FIDELITY_TASKS]
    found = [r for r in found if r and not r.get("quick") and "long_checkpoint_tau" in r]
    if not found:
        return []
    eta, epochs = main["eta"], found[0]["long_epochs"]
    rungs = rung_epochs(1, eta, epochs)
    first = main["table_signal"]["epoch_tau"][0]
    rows = []
    for r in found:
        at = {x["epoch"]: x["held_out_tau"] for x in r["long_checkpoint_tau"]}
        taus = [f"{at[k]:.2f}" for k in rungs]
        rows.append([r["dataset"], len(r["seeds"]), *taus, f"{r['long_held_out_tau']:.2f}"])
    saving = epochs_per_architecture(rungs, eta, epochs) / epochs
    early = [k for k in rungs if k <= epochs // eta]
    best = max(
        (x["held_out_tau"], r["dataset"], x["epoch"])
        for r in found
        for x in r["long_checkpoint_tau"]
        if x["epoch"] in early
    )
    if best[0] >= TARGET_TAU:
        reading = (
            f"On {best[1]} the rung at epoch {best[2]} reaches tau {best[0]:.2f} "
            f"(>= {TARGET_TAU}): a {epochs}-epoch table there could judge a schedule with "
            "several rungs."
        )
    else:
        reading = (
            f"No rung at epoch {early[-1]} or earlier reaches tau {TARGET_TAU} on any task "
            f"(the best: {best[0]:.2f}, {best[1]} at epoch {best[2]}), so a longer table here "
            f"would trade the {main['epochs_per_trial']}-epoch table's rung, whose seed-mean "
            f"accuracy at epoch {first['epoch']} ranks like its end (tau "
            f"{first['tau_with_final']:.2f}, above), for several that see little. The {GOAL:.2f}x "
            "goal needs a task on which attention placement moves end accuracy beyond seed "
            "noise and shows it early."
        )
    return [
        f"What rungs at epochs {rungs} of a {epochs}-epoch schedule (eta {eta}) would see, from "
        "the fidelity runs' per-epoch curves (`long_checkpoint_tau`): the held-out-seed Kendall "
        "tau between one seed's accuracy at the rung and the other seeds' at the end, and the "
        "end's against itself (the most this measure can show).",
        "",
        _table(["task", "seeds", *(f"epoch {k}" for k in rungs), f"end (epoch {epochs})"], rows),
        "",
        f"Stopping alone would save {saving:.2f}x there. " + reading,
    ]


def _epochs_side_by_side(
    a: dict[Any, dict[str, Any]], b: dict[Any, dict[str, Any]]
) -> tuple[int, dict[Any, tuple[float | None, float | None]]]:
    """For each row of ``a`` that ``b`` also has, the median epochs to the target in each, over
    the seeds both replayed (runs are seeded alike, so the first n runs of a longer replay are
    a shorter one's runs); and that n."""
    sys.path.insert(0, str(ROOT))
    from multifidelity import median_epochs

    n = min(x["seeds"] for x in (*a.values(), *b.values()))
    return n, {
        key: tuple(median_epochs(z[key]["epochs_to_target_runs"][:n]) for z in (a, b))
        for key in a
        if key in b
    }


def _fill_comparison(plain: dict[str, Any], filled: dict[str, Any]) -> str:
    """Per row, epochs to the target and trials finished, repeats answered as the driver does
    (the main replay) against repeats followed by a random unanswered architecture."""

    def rows(r: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(x["sampler"], x["schedule"]): x for x in r["rows"]}

    a, b = rows(plain), rows(filled)
    n, medians = _epochs_side_by_side(a, b)
    cells = []
    for key, (before, after) in medians.items():
        x, y = a[key], b[key]
        reach = [sum(e is not None for e in z["epochs_to_target_runs"][:n]) for z in (x, y)]
        cells.append(
            f"{key[0]} {key[1].replace('_', ' ')}: {before} -> {after} epochs "
            f"({reach[0]} -> {reach[1]} of {n} runs reaching it), "
            f"{x['finished_trials']:.0f} -> {y['finished_trials']:.0f} trials finished"
        )
    return (
        f"Repeats answered as the driver does -> followed by a random unanswered architecture "
        f"(same table, same eta, the same {n} seeds), epochs to {filled['target']:.0%}: "
        + "; ".join(sorted(cells))
        + "."
    )


def _within_front_comparison(crowding: dict[str, Any], other: dict[str, Any]) -> str:
    """Halving's epochs to the target per sampler, the same table and eta, ordered inside a
    front by crowding distance (the main replay) and by ``other``'s rule."""

    def halving(r: dict[str, Any]) -> dict[str, Any]:
        return {x["sampler"]: x for x in r["rows"] if x["schedule"] == "successive_halving"}

    n, medians = _epochs_side_by_side(halving(crowding), halving(other))
    pairs = ", ".join(f"{name} {before} -> {after}" for name, (before, after) in medians.items())
    return (
        f"Epochs to {other['target']:.0%} with halving, crowding distance -> "
        f"{other['within_front']} contribution within a front (same table, same eta, the same "
        f"{n} seeds): {pairs}."
    )


def _replay(r: dict[str, Any], signal: bool = True) -> str:
    """One replay's table and verdict, after what its table can judge (``signal``: left out
    where the section above already showed the same table)."""
    checkpoints = sorted(int(k[3:]) for k in r["rows"][0] if k.startswith("hv@") and "_" not in k)
    rows = [
        [
            x["sampler"],
            x["schedule"],
            *(f"{x[f'hv@{c}']:.3f} ± {x[f'hv@{c}_ci95']:.3f}" for c in checkpoints),
            f"{x['epochs_to_target_median']} ({x['reached_target']}/{x['seeds']})",
            f"{x['stopped_share']:.0%}",
            "-" if x["rung_tau"] is None else f"{x['rung_tau']:.2f}",
        ]
        for x in r["rows"]
    ]
    header = ["sampler", "schedule", *(f"hv @ {c} epochs" for c in checkpoints)]
    header += [
        f"epochs to {r['target']:.0%}, median (runs reaching it)",
        "stopped",
        "tau(rung, final)",
    ]
    verdict = _halving_verdict(r)
    epochs, stale = r["epochs_per_trial"], ""
    if "table_fingerprint" in r:
        rerun = "make bench-halving" if epochs == 9 else "bench/multifidelity.py"
        stale = _stale_table(r, epochs, rerun)
    return "\n".join(
        [
            stale + (_table_signal(r) if signal else f"The same table as above ({r['table']})."),
            "",
            f"Replayed on `{r['table']}` ({r['table_rows']} architectures, {r['epochs_per_trial']} "
            f"epochs each; rungs {r['rungs']}, eta {r['eta']}), {r['rows'][0]['seeds']} seeds per "
            f"row, {r['budget_epochs']} epochs per run; hypervolume of the finished trials' front "
            "as a ratio to the table's true front (mean ± 95% CI over seeds). Syne Tune: "
            f"{r['syne_tune']}.",
            "",
            _table(header, rows),
            "",
            verdict,
        ]
    )


def _halving_verdict(r: dict[str, Any]) -> str:
    """Halving's epochs to the target against the best full schedule's, with the ratio's
    interval over seeds and where the goal lies against it."""
    sys.path.insert(0, str(ROOT))
    from multifidelity import GOAL, headline

    h = headline(r)
    if h is None:
        return _unreached(r)
    lo, hi = h["ci95"]
    upper = "no upper bound" if math.isinf(hi) else f"{hi:.2f}x"
    reading = {
        "met": "met beyond seed noise",
        "missed": "missed beyond seed noise",
        "inside the interval": f"inside it: {r['rows'][0]['seeds']} seeds cannot tell",
    }[h["goal"]]
    return (
        f"Successive halving ({h['halving_sampler']}) reached {r['target']:.0%} of the true "
        f"hypervolume in {h['halving_epochs']} epochs (median over every seed, one that never "
        f"reached it counting as never) against {h['full_epochs']} for the best full schedule "
        f"({h['full_sampler']}): "
        f"**{h['ratio']:.2f}x**, 95% interval {lo:.2f}x to {upper} (each row's seeds "
        f"resampled). The goal, at most {GOAL:.2f}x, is {reading}. Stopping alone saves at most "
        f"{h['saving_bound']:.2f}x on rungs {r['rungs']} of {r['epochs_per_trial']} epochs at "
        f"eta {r['eta']} (each rung keeping 1/{r['eta']}: the ratio if halving found the front "
        "after the same architectures as the full schedule); below it, the extra architectures "
        "halving affords must find the front sooner."
    )


def _table_signal(r: dict[str, Any]) -> str:
    """What the table can judge: whether its final accuracies are the architectures' or one
    draw of seed noise, how early a rung can see them, and how much latency alone decides."""
    sig = r["table_signal"]
    epochs = sig["epoch_tau"]
    rows = [
        [
            e["epoch"],
            f"{e['mean_accuracy']:.3f}",
            f"{e['tau_with_final']:.2f}",
            "-" if e["tau_between_seeds"] is None else f"{e['tau_between_seeds']:.2f}",
        ]
        for e in epochs
    ]
    split = sig["split_seed_front"]
    ceiling = sum(split) / len(split) if split else None
    last = epochs[-1]["tau_between_seeds"]
    if ceiling is None:
        verdict = "With one seed, the table cannot say how much of its front is seed noise."
    elif ceiling < r["target"]:
        verdict = (
            f"Even a search that trains the whole table finds, on a fresh seed, {ceiling:.3f} "
            f"of the hypervolume on average (tau {last:.2f} between seeds at the last epoch), "
            f"below the {r['target']:.0%} target: on this table the target lies inside seed "
            "noise and cannot judge a schedule."
        )
    else:
        verdict = (
            f"A search that trains the whole table finds {ceiling:.3f} of it on a fresh seed "
            f"on average (tau {last:.2f} between seeds at the last epoch), above the "
            f"{r['target']:.0%} target: the table can judge schedules against it."
        )
    return "\n".join(
        [
            f"What `{r['table']}` can judge (`table_signal`): per epoch, the mean accuracy, the "
            "Kendall tau of the seed-mean accuracy with the final one (what a rung there can "
            "see) and between the two seeds (how much of it belongs to the architecture).",
            "",
            _table(["epoch", "mean accuracy", "tau with final", "tau between seeds"], rows),
            "",
            f"The true front has {sig['true_front_size']} architectures; the "
            f"{sig['cheapest']} lowest-latency architectures alone give "
            f"{sig['cheapest_share']:.3f} of its hypervolume. The front one seed's final "
            "accuracies pick, scored on the other seed's, reaches "
            + " and ".join(f"{x:.3f}" for x in split)
            + " of that seed's true hypervolume. "
            + verdict,
        ]
    )


def _unreached(r: dict[str, Any]) -> str:
    """What the table says when a schedule never reached the target within the budget."""
    budget, target = r["budget_epochs"], r["target"]
    halving = [x for x in r["rows"] if x["schedule"] == "successive_halving"]
    final = [x[f"hv@{budget}"] for x in halving]
    full = r["best_full_epochs_to_target"]
    return (
        f"{sum(x['reached_target'] for x in halving)} successive-halving runs of "
        f"{sum(x['seeds'] for x in halving)} reached {target:.0%} of the true hypervolume "
        f"within {budget} epochs (their hypervolume at {budget}: {min(final):.3f}-"
        f"{max(final):.3f}); the best full schedule reached it in "
        + (f"{full} epochs (median over every seed)." if full else "fewer than half its runs.")
    )


def live_halving(r: dict[str, Any]) -> str:
    rows = [
        [
            name,
            x["finished"],
            x["stopped_at_a_rung"],
            x["epochs_spent"],
            f"{x['wall_seconds']:.0f}",
            f"{x['hypervolume']:.4g}",
            x["front_size"],
        ]
        for name, x in r["runs"].items()
    ]
    full, sh = r["runs"]["full"], r["runs"]["successive_halving"]
    timed = all("trial_seconds" in x for x in r["runs"].values())
    if timed:
        for row, x in zip(rows, r["runs"].values(), strict=True):
            n = x["trials_run"]
            row.insert(5, f"{x['train_seconds'] / n:.1f} / {x['trial_seconds'] / n:.1f}")
    return "\n".join(
        [
            f"`{r['config']}` with `schedule.budget_epochs={r['budget_epochs']}`, the real driver "
            f"and training; rungs {sh['rungs']} of {sh['epochs_per_trial']} epochs. One live "
            "run each (one sample; the replay above gives the spread); hypervolume of the "
            "(accuracy, latency_rel) front with one reference point for both.",
            "",
            _table(
                [
                    "schedule",
                    "finished",
                    "stopped at a rung",
                    "epochs",
                    "wall s",
                    *(["training / whole trial, s per trial"] if timed else []),
                    "hypervolume",
                    "front",
                ],
                rows,
            ),
            "",
            f"Hypervolume ratio halving / full: {sh['hypervolume'] / full['hypervolume']:.2f}."
            + (" " + _live_overhead(full, sh) if timed else ""),
        ]
    )


def _live_overhead(full: dict[str, Any], sh: dict[str, Any]) -> str:
    """Why halving's wall time does not follow its epochs: the trials' time split into
    training and everything else a trial does, which every trial a rung stops pays too."""
    other = {k: x["trial_seconds"] - x["train_seconds"] for k, x in (("f", full), ("h", sh))}
    return (
        f"Where the trials' time went (summed over both workers): halving ran "
        f"{sh['trials_run']} trials for {sh['epochs_spent']} epochs, the full schedule "
        f"{full['trials_run']} for {full['epochs_spent']}; training took "
        f"{sh['train_seconds']:.0f} s against {full['train_seconds']:.0f} s "
        f"({sh['train_seconds'] / sh['epochs_spent']:.1f} s against "
        f"{full['train_seconds'] / full['epochs_spent']:.1f} s per epoch), everything else "
        f"(building, latency timing against the reference, stopping) {other['h']:.0f} s "
        f"against {other['f']:.0f} s, {other['h'] / sh['trials_run']:.1f} s against "
        f"{other['f'] / full['trials_run']:.1f} s per trial. Halving saves wall time only where "
        "an epoch costs much more than a trial's setup: longer schedules, larger data, or a GPU."
    )


def scale(r: dict[str, Any]) -> str:
    rows = [
        [
            x["storage"],
            x["concurrency"],
            x["trials_settled"],
            f"{x['trials_per_second']:.1f}",
            f"{x['offered_trials_per_second']:.0f}",
            *(
                f"{x['calls'][k]['p50_ms']:.1f} / {x['calls'][k]['p99_ms']:.1f}"
                for k in ("ask", "decide", "tell")
            ),
            # worker processes Ray started (a result from before they were counted: -)
            f"{x['worker_processes']} ({x['trials_per_worker_process']:.1f})"
            if "worker_processes" in x
            else "-",
            # rows of another run are kept when one configuration is rerun (bench/scale.py)
            f"{x['measured_at'][:16].replace('T', ' ')} ({x.get('commit') or '?'})"
            if x.get("measured_at")
            else "not recorded",
        ]
        for x in r["runs"]
    ]
    dated = {x.get("measured_at", "")[:10] for x in r["runs"]}
    best = max(x["trials_per_second"] for x in r["runs"])
    hw, versions = r.get("hardware"), r.get("versions", {})
    where = (
        f"{hw['cpus']} cores ({_machine(hw)}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + ")"
        if hw
        else "2 cores (machine and versions not recorded in this result)"
    )
    levels = " and ".join(str(c) for c in sorted({x["concurrency"] for x in r["runs"]}))
    # A dispatched trial trains rung 1 (1 epoch) and, for 1 in eta, on to the last rung.
    epochs_per_trial = (2 / 3) * 1 + (1 / 3) * r["epochs"]
    fed = best * epochs_per_trial * 60
    top = max(r["runs"], key=lambda x: x["trials_per_second"])
    if best < 0.8 * top["offered_trials_per_second"]:
        verdict = (
            f"The driver saturates at about {best:.1f} trials/s ({top['storage']}, "
            f"concurrency {top['concurrency']}), below the {top['offered_trials_per_second']:.0f}/s "
            "the stub workers offer."
        )
    else:
        verdict = f"The driver kept up with what the workers offered (up to {best:.1f} trials/s)."
    verdict += (
        f" A real dispatched trial trains about {epochs_per_trial:.2f} epochs under this "
        f"schedule, so at one minute per GPU epoch {best:.1f} trials/s keeps about {fed:.0f} "
        "GPUs busy."
    )
    return "\n".join(
        [
            f"About {r['trials']} stub trials per run (no training: fixed costs, made-up accuracies, "
            f"{r['stub_sleep_s']} s per epoch) through the real driver with successive halving "
            f"(rungs at 1 and {r['epochs']} epochs, eta 3, {len(r['seeds'])} seeds); "
            f"concurrency {levels} on {where} with fractional CPUs per trial. Trials/s is "
            "measured after the first 10% (while Ray starts its actors); offered is what the "
            "workers could take if the driver never made them wait. Call times are the driver's "
            "own, p50 / p99 in ms. Workers: the distinct worker processes that ran a trial "
            "(trials per process): each new one is a process start on the cores the driver "
            "shares."
            + (
                " Rows measured at different times are compared across sittings of a shared "
                "VM, so their differences carry that noise too (machine and versions above "
                "are the latest run's)."
                if len(dated) > 1
                else ""
            ),
            "",
            _table(
                [
                    "storage",
                    "concurrency",
                    "trials",
                    "trials/s",
                    "offered/s",
                    "ask",
                    "decide",
                    "tell",
                    "workers",
                    "measured (commit)",
                ],
                rows,
            ),
            "",
            verdict,
        ]
    )


def targets(r: dict[str, Any]) -> str:
    v = r["versions"]
    if r.get("device", "cpu") == "cpu":
        how = f"batch 1, one thread; torch {v['torch']}, onnxruntime {v['onnxruntime']}"
    else:
        how = f"batch {r['targets']['eager']['batch_size']}, CUDA events; {_gpu_stack(v)}"
    parts = [
        f"latency_rel on each target at {r['resolution']} px and with eager PyTorch at the "
        f"training resolution ({how}); {_machine(r['hardware'])}."
    ]
    for s in r["spaces"]:
        taus = [[pair, f"{v['tau']:.3f}", v["n"]] for pair, v in s["kendall_tau"].items()]
        timed = {
            name: sum(name in row["rel"] for row in s["architectures"])
            for name in s["largest_rank_moves"]
        }
        moves = [
            [name, "-", f"{timed[name]} architecture timed: nothing to rank"]
            if timed[name] < 2
            else [
                name,
                f"{m['rank_shift']:+.0f}",
                f"`{m['label']}`" if m["rank_shift"] else "none moved",
            ]
            for name, ms in s["largest_rank_moves"].items()
            for m in ms[:1]
        ]
        measured, requested = len(s["architectures"]), s.get("requested")
        cut = (
            f"; the run ended with its lease, {requested} were asked for"
            if requested and measured < requested
            else ""
        )
        when = ""  # said only where the spaces come from different runs
        if any(t.get("measured_at") != s.get("measured_at") for t in r["spaces"]):
            stamp = f"measured {s['measured_at']}" if s.get("measured_at") else "an earlier run"
            when = f"; {stamp}, {(s.get('hardware') or r['hardware']).get('name')}"
        kept = [row["measured_at"] for row in s["architectures"] if row.get("measured_at")]
        if kept:  # rows a resumed run kept from the runs before it
            dates = ", ".join(sorted({str(d) for d in kept}))
            when += f"; {len(kept)} of them timed by earlier runs ({dates})"
        parts += [
            "",
            f"**{s['backbone']}** ({measured} architectures of `configs/{s['config']}`, trained "
            f"at {s['training_resolution']} px{cut}{when}):",
            "",
            _table(["targets", "Kendall tau", "architectures"], taus),
            "",
            _table(["target", "largest rank move from train-res eager", "architecture"], moves),
            "",
            _table(
                [
                    "target",
                    "architectures",
                    "median latency_rel",
                    "range",
                    "eager's median, same architectures",
                    "median 95% CI half-width",
                ],
                _target_costs(s["architectures"]),
            ),
        ]
    return "\n".join(parts)


def _target_costs(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Per target, what the sampled placements cost beside the same network without attention
    there: the median and range of latency_rel, how tightly each was measured (the median
    half-width of its 95% interval, relative), and eager PyTorch's median at the deployment
    resolution over the same architectures (compiled targets may time only the first few,
    baselines first, so only that compares like with like)."""
    names = list(dict.fromkeys(name for row in rows for name in row["rel"]))
    anchor = "eager" if "eager" in names else names[0]
    table = []
    for name in names:
        timed = [row for row in rows if name in row["rel"]]
        rel = [row["rel"][name] for row in timed]
        same = [row["rel"][anchor] for row in timed if anchor in row["rel"]]
        ci = [
            (row["ci"][name][1] - row["ci"][name][0]) / 2 / row["rel"][name]
            for row in timed
            if name in row.get("ci", {})  # a row stored without its interval
        ]
        table.append(
            [
                name,
                len(rel),
                f"{statistics.median(rel):.3f}",
                f"{min(rel):.3f}-{max(rel):.3f}",
                f"{statistics.median(same):.3f}" if same else "-",
                f"{statistics.median(ci):.1%}" if ci else "-",
            ]
        )
    return table


GPU_COLUMNS = [
    "model",
    "target",
    "ms (95% CI)",
    "IQR/median",
    "reference ms",
    "latency_rel (95% CI)",
    "latency_rel IQR/median",
    "compile s",
]


def gpu_row(x: dict[str, Any]) -> list[str]:
    """One latency row of gpu_check.json, as BENCHMARKS.md and the script's own table show it."""
    if "error" in x:
        return [x["model"], x["target"], x["error"], "", "", "", "", ""]
    return [
        x["model"],
        x["target"],
        f"{x['latency_ms']:.3f} ({x['latency_ci_ms'][0]:.3f}-{x['latency_ci_ms'][1]:.3f})",
        f"{x['iqr_over_median']:.1%}",
        f"{x['reference_ms']:.3f}",
        f"{x['latency_rel']:.3f} ({x['latency_rel_ci'][0]:.3f}-{x['latency_rel_ci'][1]:.3f})",
        f"{x['latency_rel_iqr_over_median']:.1%}" if "latency_rel_iqr_over_median" in x else "",
        f"{x['compile_seconds']:.1f}" if x.get("compile_seconds") else "",
    ]


def _reference_ms(r: dict[str, Any], target: str) -> tuple[float, float] | None:
    """The same ResNet-18 reference's ms beside itself and beside ca@standard on ``target``:
    equal when the timing does not depend on what runs before it."""
    found = {
        x["model"]: x["reference_ms"]
        for x in r["latency"]
        if x["target"] == target and "error" not in x and x["model"].startswith("resnet18")
    }
    alone, beside = found.get("resnet18 none (against itself)"), found.get("resnet18 ca@standard")
    return (alone, beside) if alone and beside else None


def _gpu_sync_fix(r: dict[str, Any]) -> list[str]:
    before = _load("gpu_check_unsynced")
    target = "eager bf16 channels_last"
    pairs = before and _reference_ms(before, target), _reference_ms(r, target)
    if not all(pairs):
        return []
    (b_alone, b_beside), (a_alone, a_beside) = pairs
    jitter = next(
        x["iqr_over_median"]
        for x in r["latency"]
        if x["target"] == target and x["model"] == "resnet18 none (against itself)"
    )
    gap = a_beside / a_alone - 1
    if abs(gap) <= 2 * jitter:
        reading = (
            f"inside the host's jitter (one forward's IQR/median in the self-check row: "
            f"{jitter:.0%}); the paired ratio cancels that jitter, as the self-check rows show."
        )
    else:
        ms = {
            x["target"]: x["latency_ms"]
            for x in r["latency"]
            if x["model"] == "resnet18 ca@standard" and "error" not in x
        }
        slow_host = ms.get(target, 0.0) > ms.get("eager fp32", math.inf)
        reading = (
            f"beyond the host's jitter in the self-check row ({jitter:.0%}). Both networks of "
            f"that pairing ran slow (ca@standard {ms[target]:.3f} ms, against "
            f"{ms['eager fp32']:.3f} ms in fp32), so the host ran slower during that pairing: "
            "times moved between pairings more than the paired ratio did (the runs below)."
            if slow_host
            else f"beyond the host's jitter in the self-check row ({jitter:.0%}), and its "
            "partner did not slow with it: a pass may again be timing another's queue."
        )
    return [
        "",
        f"Each timed pass starts from an idle GPU. Before that (the same script, an earlier run on "
        f"the same machine kind, `bench/results/gpu_check_unsynced.json`), a pass's CUDA events "
        f"also measured whatever was still queued before it: the ResNet-18 reference ({target}) "
        f"read {b_alone:.3f} ms beside itself and {b_beside:.3f} ms beside ca@standard "
        f"({b_beside / b_alone - 1:+.0%}), GPU time in one pairing and launch time in the other. "
        f"Synchronised, it reads {a_alone:.3f} and {a_beside:.3f} ms ({gap:+.0%}), {reading} At "
        "batch 32 an eager forward on this GPU is mostly the host launching kernels, so modules "
        "made of many small ops cost far more here than their FLOPs say.",
    ]


def _gpu_graphs(r: dict[str, Any]) -> list[str]:
    """What CUDA graphs change: each model's latency_rel compiled without and with them."""
    rel = {
        (x["model"], x.get("compile_mode", "default")): x["latency_rel"]
        for x in r["latency"]
        if x.get("runtime") == "torch_compile" and "error" not in x
    }
    models = [m for (m, mode) in rel if mode == "reduce-overhead" and (m, "default") in rel]
    if not models:
        return []
    moves = ", ".join(
        f"{m} {rel[m, 'default']:.2f}x -> {rel[m, 'reduce-overhead']:.2f}x" for m in models
    )
    return [
        "",
        "Compiled, the launches remain unless CUDA graphs replay them (`compile_mode: "
        f"reduce-overhead`): {moves}. The runtime a network ships on decides much of what an "
        "attention module costs; time that runtime as a target.",
    ]


def _gpu_stack(versions: dict[str, str]) -> str:
    """The GPU runtimes' versions; onnxruntime-gpu, where installed, is the one imported."""
    ort = "onnxruntime-gpu" if "onnxruntime-gpu" in versions else "onnxruntime"
    keys = ("torch", "triton", "cudnn", ort)
    return ", ".join(f"{k} {versions[k]}" for k in keys if k in versions)


def _gpu_onnxruntime(r: dict[str, Any]) -> list[str]:
    """What ONNX Runtime's CUDA provider makes of a module, beside eager PyTorch fp32."""
    rel = {(x["model"], x["target"]): x for x in r["latency"] if "error" not in x}
    pairs = [
        (m, rel[m, "eager fp32"], x)
        for (m, _target), x in rel.items()
        if x.get("runtime") == "onnxruntime" and (m, "eager fp32") in rel
    ]
    if not pairs:
        return []
    cheaper = [o["latency_rel"] < e["latency_rel"] for _, e, o in pairs]
    verdict = (
        "The same module costs less beside the network there; on this evidence a GPU "
        "deployment on ONNX Runtime should be searched with `latency_rel@onnxruntime`, not "
        "eager PyTorch."
        if all(cheaper)
        else "The same module costs more beside the network there."
        if not any(cheaper)
        else "Which runtime a module costs less on depends on the network."
    )
    moves = ", ".join(
        f"{m} {e['latency_rel']:.2f}x -> {o['latency_rel']:.2f}x "
        f"(IQR/median {e['latency_rel_iqr_over_median']:.1%} -> "
        f"{o['latency_rel_iqr_over_median']:.1%})"
        for m, e, o in pairs
    )
    return [
        "",
        "ONNX Runtime's CUDA provider (fp32, input and output bound on the GPU, so no copy to "
        f"or from the host is timed), against eager fp32: {moves}. {verdict}",
    ]


def _gpu_history(r: dict[str, Any]) -> list[str]:
    """Each row's latency_rel run by run (one machine of the kind per run): which figures a
    user can carry from one GPU host to the next, and which move with the host."""
    history = r.get("history", [])
    if len(history) < 2:
        return []
    rows = list(history[-1]["latency_rel"])
    moved = _moved_between_runs(history)
    header = [
        "model / target",
        *(f"{h['measured_at'] or 'not recorded'} ({h['gpu']})" for h in history),
        "spread",
    ]
    table = [
        [
            row,
            *(f"{h['latency_rel'][row]:.3f}" if row in h["latency_rel"] else "-" for h in history),
            f"{moved[row]:.1%}" if row in moved else "-",
        ]
        for row in rows
    ]
    compiled = [m for row, m in moved.items() if "compile" in row]
    eager = [m for row, m in moved.items() if "compile" not in row and "itself" not in row]
    verdict = (
        f" Compiled rows moved by at most {max(compiled):.1%} between runs, eager rows by up to "
        f"{max(eager):.1%}: an eager forward here is mostly the host launching kernels, and "
        "the host's speed moves with the machine."
        if compiled and eager
        else ""
    )
    return [
        "",
        "The same rows run by run, one column per run of this script (latency_rel; the last "
        f"column is (max - min) / median).{verdict}",
        "",
        _table(header, table),
    ]


def gpu_check(r: dict[str, Any]) -> str:
    if r.get("device") != "cuda":
        return "No GPU figures yet: no GPU run has been recorded."
    hw, v = r["hardware"], r.get("versions", {})
    stack = _gpu_stack(v)
    parts = [
        f"{hw.get('name')}, CUDA {hw.get('cuda')}, Python {hw.get('python')}; {stack}. "
        f"{r['image_size']} px, batch {r['batch_size']}; CUDA events, candidate and reference "
        "alternating every forward, each timed pass from an idle (synchronised) GPU. The first "
        "two rows time the reference against a separately built copy of itself (1.000 is "
        "exact): the noise floor.",
        "",
        _table(GPU_COLUMNS, [gpu_row(x) for x in r["latency"]]),
        *_gpu_sync_fix(r),
        *_gpu_graphs(r),
        *_gpu_onnxruntime(r),
        *_gpu_history(r),
    ]
    t = r["training_trial"]
    if "error" in t:
        parts += ["", f"Training trial failed: {t['error']}"]
    else:
        parts += [
            "",
            f"One trial as the search runs it ({t['arch']}, {t['dataset']}, {t['epochs']} epochs "
            f"x {t['seeds']} seeds, bf16 autocast, channels_last): {t['seconds']:.1f} s "
            f"({t['train_seconds']:.1f} s training), {t['evaluations_per_hour']:.0f} evaluations "
            "per hour per GPU worker. A network 16-128 channels wide at 16 px leaves the GPU "
            "waiting on kernel launches (the latency rows show it even at full width): on a GPU, "
            "search wider networks at deployment resolution, or run several workers per GPU.",
        ]
    for e in r.get("cifar_shaped_epochs") or []:
        if isinstance(e, dict) and "s_per_epoch" in e:
            parts += [
                "",
                f"ResNet-18 (cifar stem), {e['data']}, bf16, channels_last, batch 512: "
                f"{e['s_per_epoch']:.2f} s per epoch over {e['epochs']} epoch(s), the first "
                "included (published anchor on an A100: about 2 s).",
            ]
    return "\n".join(parts)


SECTIONS = {
    "throughput": ("Throughput", throughput, "bench/throughput.py"),
    "overhead": ("Framework overhead", overhead, "bench/overhead.py"),
    "samplers": ("Sampler efficiency and cost", samplers, "bench/tabular.py, bench/samplers.py"),
    "measurement": ("Measurement quality", measurement, "bench/measurement.py"),
    "fidelity": ("Short-schedule fidelity", fidelity, "bench/fidelity.py"),
    "fidelity_digits16": (
        "Short-schedule fidelity on the quickstart's own task",
        fidelity,
        "bench/fidelity.py (configs/quickstart.yaml as it stands: digits, 16 px)",
    ),
    "fidelity_fashion_mnist16": (
        "Short-schedule fidelity on real data (Fashion-MNIST)",
        fidelity,
        "bench/fidelity.py (make bench-fidelity-fashion: Fashion-MNIST from Debian's "
        "dataset-fashion-mnist, 2,000 training and 2,000 val images, 16 px)",
    ),
    "fidelity_long72": (
        "Short-schedule fidelity at 12 epochs, under the 6x contract (clutter)",
        fidelity,
        "bench/fidelity.py (make bench-fidelity-long: --set eval.dataset=clutter "
        "--set eval.train.epochs=12 --long-epochs 72)",
    ),
    "multifidelity": ("Successive halving", multifidelity, "bench/multifidelity.py"),
    "live_halving": ("Successive halving, live", live_halving, "bench/live_halving.py"),
    "scale": ("Driver throughput at cluster scale", scale, "bench/scale.py"),
    "targets": ("Deployment targets", targets, "bench/targets.py"),
    "gpu_check": ("GPU check", gpu_check, "bench/gpu_check.py (on a machine with a GPU)"),
    "targets_cuda": (
        "Deployment targets on a GPU",
        targets,
        "bench/targets.py --device cuda (on a machine with a GPU)",
    ),
}
GPU_SECTIONS = ("gpu_check", "targets_cuda")


def main() -> None:
    parts = [
        "# Benchmarks",
        "",
        "Generated by `bench/report.py` from `bench/results/*.json`; rerun everything with "
        "`make bench` (well over an hour on 2 cores: `bench/scale.py` alone runs four "
        "2,000-trial searches of about 1,000 s each; the tabular benchmark in `bench/data/` is "
        "built once with `make bench-table`, about 30 minutes, or 19 when its rows' timing can "
        "be reused). Each script also has `--quick`, which CI runs to prove the scripts work; "
        "quick numbers are never written here.",
    ]
    for name, (title, render, script) in SECTIONS.items():
        r = _load(name)
        parts += ["", f"## {title}", "", f"Script: `{script}`.", ""]
        missing = "No GPU figures yet." if name in GPU_SECTIONS else "Not measured yet."
        parts.append(render(r) if r and not r.get("quick") else missing)
    OUT.write_text("\n".join(parts) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
