"""Latency measurement: structure, the stopping rule and the hardware record (no wall-clock
assertions)."""

from __future__ import annotations

import pytest

from evaluators import LatencySettings, measure_latency
from evaluators.latency import median_ci
from spaces import StageChoice, build_model, uniform

ARCH = dict(widths=(16, 32, 64, 128), stem="cifar", image_size=16, in_chans=1)


def test_interleaved_measurement_records_hardware_settings_and_intervals():
    cand = build_model(uniform("resnet18", StageChoice(attention="ca"), **ARCH))
    ref = build_model(uniform("resnet18", **ARCH))
    s = LatencySettings(repeats=5, warmup=1, min_sample_ms=0.5, max_seconds=0.5)
    r = measure_latency(cand, ref, (1, 16, 16), s)
    assert r.latency_ms > 0 and r.reference_ms > 0 and r.latency_iqr_ms >= 0
    assert r.latency_rel > 0 and r.settings == s
    assert r.latency_rel_ci[0] <= r.latency_rel <= r.latency_rel_ci[1]
    assert r.latency_ci_ms[0] <= r.latency_ms <= r.latency_ci_ms[1]
    assert {"device", "torch", "cuda", "name", "threads"} <= set(r.hardware)
    assert not cand.training and not ref.training  # measured in eval mode


def test_sampling_stops_on_precision_or_on_time_never_before_the_minimum():
    model = build_model(uniform("resnet18", **ARCH))
    loose = LatencySettings(repeats=7, warmup=1, min_sample_ms=0.5, rel_ci=10.0)
    assert measure_latency(model, model, (1, 16, 16), loose).blocks == 7  # precise at once
    # An interval no measurement reaches: sampling runs until the time limit.
    strict = LatencySettings(repeats=3, warmup=1, min_sample_ms=0.5, rel_ci=1e-9, max_seconds=0.3)
    r = measure_latency(model, model, (1, 16, 16), strict)
    assert r.seconds >= 0.3 and r.blocks > 3


def test_same_model_ratio_is_near_one_on_average():
    # Not a timing assertion: the ratio of a model to itself is 1 up to noise, and it is
    # computed from paired samples, so it cannot be off by a systematic factor like 2.
    model = build_model(uniform("resnet18", **ARCH))
    s = LatencySettings(repeats=9, warmup=1, min_sample_ms=0.5, max_seconds=0.5)
    assert 0.5 < measure_latency(model, model, (1, 16, 16), s).latency_rel < 2.0


def test_median_interval_uses_the_order_statistics():
    xs = [float(v) for v in range(1, 101)]  # median 50.5
    lo, hi = median_ci(list(reversed(xs)))
    # n = 100: 49.5 -+ 1.96 * 10 / 2 = 9.8 -> 0-based ranks 39 and 60: the values 40 and 61
    assert (lo, hi) == (40.0, 61.0)
    assert median_ci([3.0]) == (3.0, 3.0)


@pytest.mark.parametrize("bad", [{"rel_ci": 0}, {"max_seconds": -1}, {"repeats": 2}])
def test_bad_latency_settings_are_refused(bad):
    with pytest.raises(ValueError):
        LatencySettings(**bad)
