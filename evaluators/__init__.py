"""HOW a candidate is scored: data, short-schedule training, latency, FLOPs and params."""

from evaluators.data import DATASETS, DataError, Dataset, load_dataset
from evaluators.evaluate import (
    Cost,
    EpochReport,
    EvalConfig,
    Outcome,
    eval_dir,
    evaluate,
    measure_cost,
)
from evaluators.flops import count_flops
from evaluators.latency import LatencySettings, LatencyTarget, measure_latency, measure_targets
from evaluators.train import SeedTrainer, TrainSettings

__all__ = [
    "DATASETS",
    "Cost",
    "DataError",
    "Dataset",
    "EpochReport",
    "EvalConfig",
    "LatencySettings",
    "LatencyTarget",
    "Outcome",
    "SeedTrainer",
    "TrainSettings",
    "count_flops",
    "eval_dir",
    "evaluate",
    "load_dataset",
    "measure_cost",
    "measure_latency",
    "measure_targets",
]
