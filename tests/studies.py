"""A tiny search config shared by the end-to-end tests (digits at 8 px, 1 epoch)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import yaml

TINY = {
    "space": {
        "backbone": "resnet18",
        "widths": [16, 16, 32, 32],
        "stem": "cifar",
        "in_chans": 1,
        "num_classes": 10,
        "image_size": 8,
        "attentions": ["none", "se", "eca", "ca"],
        "positions": ["standard", "post"],
        "searched_stages": [2, 3],
    },
    "eval": {
        "dataset": "digits",
        "seeds": [0, 1],
        "train": {"epochs": 1, "batch_size": 128, "lr": 0.2},
        "latency": {"repeats": 3, "warmup": 1, "min_sample_ms": 0.2, "max_seconds": 0.3},
    },
    "objectives": ["accuracy", "latency_rel"],
    "sampler": {"name": "nsga2", "population_size": 4, "seed": 0},
    "concurrency": 2,
    "max_failures": 3,
}


def make_config(tmp_path: Path, address: str, **changes) -> Path:
    data = json.loads(json.dumps(TINY)) | {"output_dir": str(tmp_path), "ray_address": address}
    for key, value in changes.items():
        node = data
        *parents, last = key.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    path = tmp_path / f"{data.get('study', 'attnas')}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def trained_pairs(study_dir: Path):
    """How often each (arch hash, eval fingerprint, seed, epoch) was trained to a checkpoint,
    from the evaluations' append-only epoch logs: 1 everywhere means nothing was re-trained."""
    pairs: Counter = Counter()
    for f in (study_dir / "evals").glob("*/epochs.jsonl"):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            for seed in r["seeds"]:
                pairs[(r["arch_hash"], r["eval_fingerprint"], seed, r["epoch"])] += 1
    return pairs


def state_counts(study) -> Counter:
    """Trials by state, plus ``architectures``: the COMPLETE trials ``n_trials`` counts (a
    duplicate proposal answered from an earlier trial's evaluation is COMPLETE but not one)."""
    from results.record import read_record

    counts = Counter(t.state.name for t in study.trials)
    counts["architectures"] = sum(
        t.state.name == "COMPLETE" and read_record(t).counts for t in study.trials
    )
    return counts
