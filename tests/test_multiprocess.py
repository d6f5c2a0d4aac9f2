"""Multi-process data parallelism: 2 processes x 1 CPU device (``jax.distributed``, coordinator on
127.0.0.1) against 1 process x 2 devices, on the Engine and through ``train.fit`` with checkpoints.

The counts are ``multiprocess_common.PROCESSES`` and ``LOCAL_DEVICES``; the reference is this process
(the ``multidevice`` one, ``JAXBEAM_TEST_DEVICES`` devices), so it needs PROCESSES x LOCAL_DEVICES of them."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import multiprocess_common as common
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _close(got, want, *, adam):
    checked = 0
    for k, v in want.items():
        # Adam turns the round-off-level gradient of the attention key bias (exactly 0) into sign-random
        # steps; every other parameter agrees to float32 round-off
        if adam and "['key']['bias']" in k:
            continue
        np.testing.assert_allclose(got[k], v, rtol=1e-4, atol=1e-5, err_msg=k)
        checked += 1
    assert checked > 20


@pytest.mark.multidevice
def test_several_processes_train_like_one_with_as_many_devices(tmp_path):
    n, m = common.PROCESSES, common.LOCAL_DEVICES
    assert n > 1 and jax.device_count() == n * m  # the reference: this process (tests/conftest.py)
    port = str(_free_port())
    # the workers inherit XLA_FLAGS (tests/conftest.py: XLA:CPU at -O0, the same ops; most of their time is
    # compilation) but not the compilation cache (each process of a distributed run compiles its own program)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    worker = str(ROOT / "tests" / "multiprocess_worker.py")
    procs = [
        subprocess.Popen(
            [sys.executable, worker, str(i), str(n), str(m), port, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )  # fmt: skip
        for i in range(n)
    ]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=400)[0])
    finally:
        for p in procs:
            p.kill()
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0 and "DONE" in out, out[-3000:]
    got = dict(np.load(tmp_path / "result.npz"))
    sgd = common.sgd_steps()
    _close({k[3:]: v for k, v in got.items() if k.startswith("sgd")}, sgd, adam=False)
    fit = common.fit_run(tmp_path / "ref")
    _close({k[3:]: v for k, v in got.items() if k.startswith("fit")}, fit, adam=True)
    for k in fit:  # the second fit of the multi-process run resumed its finished checkpoint exactly
        np.testing.assert_array_equal(got["again" + k], got["fit" + k])
    steps = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert steps == ["6", "8"], steps
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 8 + 2
