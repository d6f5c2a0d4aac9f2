"""The ``multidevice`` tests (data parallelism: 1 vs 2 devices, 2 processes x 1 device), in one subprocess.

The main test session runs on one host CPU device (``tests/conftest.py``); this test starts one pytest
process with ``JAXBEAM_TEST_DEVICES=2`` that runs exactly the tests marked ``multidevice`` and fails with
their report if any of them fails. Run them directly with ``JAXBEAM_TEST_DEVICES=2 pytest -m multidevice``.
Two devices take the same data-parallel code path as eight (any mesh of more than one device) for a
fraction of the time on a 2-core machine; the tests hold for any count > 1 (tests/test_multiprocess.py
needs as many as its processes x devices per process).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(os.environ.get("JAXBEAM_TEST_DEVICES", "1") != "1", reason="this process runs them itself")
def test_multidevice_tests_pass_on_2_host_devices():
    env = {**os.environ, "JAXBEAM_TEST_DEVICES": "2"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0"]
    cmd += ["-m", "multidevice and not slow", "--timeout", "900", "tests"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    summary = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
