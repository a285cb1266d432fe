"""Latency measurement: structure and hardware record (no wall-clock assertions)."""

from __future__ import annotations

from evaluators import LatencySettings, measure_latency
from spaces import StageChoice, build_model, uniform

ARCH = dict(widths=(16, 32, 64, 128), stem="cifar", image_size=16, in_chans=1)


def test_interleaved_measurement_records_hardware_and_settings():
    cand = build_model(uniform("resnet18", StageChoice(attention="ca"), **ARCH))
    ref = build_model(uniform("resnet18", **ARCH))
    s = LatencySettings(repeats=5, warmup=1, min_sample_ms=0.5)
    r = measure_latency(cand, ref, (1, 16, 16), s)
    assert r.latency_ms > 0 and r.reference_ms > 0 and r.latency_iqr_ms >= 0
    assert r.latency_rel > 0 and r.settings == s
    assert {"device", "torch", "cuda", "name", "threads"} <= set(r.hardware)
    assert not cand.training and not ref.training  # measured in eval mode


def test_same_model_ratio_is_near_one_on_average():
    # Not a timing assertion: the ratio of a model to itself is 1 up to noise, and it is
    # computed from paired samples, so it cannot be off by a systematic factor like 2.
    model = build_model(uniform("resnet18", **ARCH))
    r = measure_latency(model, model, (1, 16, 16), LatencySettings(repeats=9, warmup=1))
    assert 0.5 < r.latency_rel < 2.0
