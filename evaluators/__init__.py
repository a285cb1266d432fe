"""HOW a candidate is scored: data, short-schedule training, latency, FLOPs and params."""

from evaluators.data import DATASETS, DataError, Dataset, load_dataset
from evaluators.evaluate import Cost, EvalConfig, Metrics, evaluate, measure_cost, train_seeds
from evaluators.flops import count_flops
from evaluators.latency import LatencySettings, measure_latency
from evaluators.train import TrainSettings, train

__all__ = [
    "DATASETS",
    "Cost",
    "DataError",
    "Dataset",
    "EvalConfig",
    "LatencySettings",
    "Metrics",
    "TrainSettings",
    "count_flops",
    "evaluate",
    "load_dataset",
    "measure_cost",
    "measure_latency",
    "train",
    "train_seeds",
]
