"""A tiny search config shared by the end-to-end tests (digits at 8 px, 1 epoch)."""

from __future__ import annotations

import json
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
        "latency": {"repeats": 3, "warmup": 1, "min_sample_ms": 0.2},
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
    """(arch hash, seed) pairs trained to completion, from the trainer's append-only records."""
    from collections import Counter

    pairs: Counter = Counter()
    for f in (study_dir / "evals").glob("*/seeds.jsonl"):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            pairs[(r["arch_hash"], r["seed"])] += 1
    return pairs
