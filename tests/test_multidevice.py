"""The ``multidevice`` tests (data parallelism: 1 vs 8 devices, 2 processes x 4 devices), in one subprocess.

The main test session runs on one host CPU device (``tests/conftest.py``); this test starts one pytest
process with ``JAXBEAM_TEST_DEVICES=8`` that runs exactly the tests marked ``multidevice`` and fails with
their report if any of them fails. Run them directly with ``JAXBEAM_TEST_DEVICES=8 pytest -m multidevice``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(os.environ.get("JAXBEAM_TEST_DEVICES", "1") != "1", reason="this process runs them itself")
def test_multidevice_tests_pass_on_8_host_devices():
    env = {**os.environ, "JAXBEAM_TEST_DEVICES": "8"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0"]
    cmd += ["-m", "multidevice and not slow", "--timeout", "900", "tests"]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    summary = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
