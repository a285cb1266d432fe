"""Shared fixtures. Tests run on CPU with few threads so two-core CI is not oversubscribed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def dynamo_counters(monkeypatch):
    """torch.compile on dynamo's own ``eager`` backend (the same recompile bookkeeping without
    inductor's codegen, so fast), from a fresh dynamo state; yields dynamo's counters, whose
    ``frames`` say how many forwards it compiled and how many it gave up on."""
    from torch._dynamo.utils import counters

    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **_: compile_(model, backend="eager"))
    torch.compiler.reset()
    counters.clear()
    yield counters
    torch.compiler.reset()


def randomize_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every norm layer non-trivial statistics and affine parameters.

    timm zero-initialises the last BN of each residual branch, ConvNeXt scales its branches by
    1e-6, and default norm statistics make many bugs invisible (a fusion that ignores BN, a
    module that is never on the path).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            elif isinstance(m, torch.nn.LayerNorm | torch.nn.GroupNorm) and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
        # ConvNeXt's layer scale starts at 1e-6, which would hide every residual branch.
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)


@pytest.fixture
def bn_randomizer():
    return randomize_batchnorm


BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """A head node started as its own process, as a user would: ``ray start --head``."""
    import ray

    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    env = os.environ | {"RAY_AUTH_MODE": "disabled"}
    subprocess.run(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--num-gpus=0",
            "--include-dashboard=false",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    address = f"127.0.0.1:{port}"
    os.environ["RAY_AUTH_MODE"] = "disabled"
    try:
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, env=env)


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL server for the whole session (see tests/pg.py)."""
    from tests.pg import postgres_server

    with postgres_server() as server:
        yield server


# -- the reliability ledger: tests record what they observed; RELIABILITY.md is written from it
LEDGER: dict[str, list] = {
    "tests": [],  # reliability tests that passed (keys of RELIABILITY_TESTS)
    "kills": [],  # {"kind": driver-sigkill | worker-node-sigterm, "where", "running"}
    "faults": [],  # crash windows injected
    "bad_inputs": [],
    "trials": [],  # per test: finished before the kills, kept unchanged after, counted, ...
}
# Every reliability test: RELIABILITY.md is rewritten only by a run in which all of them passed.
RELIABILITY_TESTS = frozenset(
    [
        *(
            f"fault:{p}"
            for p in (
                "after_ask",
                "before_tell",
                "after_tell",
                "before_result",
                "after_result",
                "checkpoint_write",
            )
        ),
        "chaos",
        "bad-inputs",
        "password",
        "safe-loading",
        "multinode",
    ]
)


@pytest.fixture(scope="session")
def ledger():
    return LEDGER


def pytest_sessionfinish(session, exitstatus):
    if exitstatus != 0 or not set(LEDGER["tests"]) >= RELIABILITY_TESTS:
        return  # only a green run of every reliability test may rewrite the record
    from tests.reliability_report import write_reliability

    write_reliability(LEDGER, Path(__file__).resolve().parent.parent / "RELIABILITY.md")
