"""Test-wide JAX set-up: 8 host CPU devices (for data-parallel tests), set before any backend use.

With 8 virtual devices on a 2-core machine, a device thread can be starved for longer than XLA:CPU's
default 40 s collective rendezvous limit when the machine is busy, and XLA then aborts the process;
the limits are raised (they only matter for a stuck run, which pytest's own time-outs catch).
"""

import os

os.environ["XLA_FLAGS"] = " ".join(
    [
        os.environ.get("XLA_FLAGS", ""),
        "--xla_cpu_collective_call_terminate_timeout_seconds=1200",
        "--xla_cpu_collective_call_warn_stuck_timeout_seconds=300",
        "--xla_cpu_collective_timeout_seconds=1200",
    ]
).strip()

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_num_cpu_devices", 8)


@pytest.fixture
def x64():
    """Float64 inside the test (references and finite differences in double precision)."""
    with jax.enable_x64(True):
        yield
