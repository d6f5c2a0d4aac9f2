"""Test-wide JAX set-up, made before any backend use.

Devices: one host CPU device. The tests marked ``multidevice`` (data parallelism, 1 vs 8 devices) need 8;
``tests/test_multidevice.py`` runs them in one pytest subprocess with ``JAXBEAM_TEST_DEVICES=8`` and the
main session deselects them. (With 8 virtual devices on 2 cores every other test paid for it: a label
set of 16 SCA samples took 118 s on 8 devices against 17 s on one, and an 8-way program compiles slower.)

Compilation: the suite compiles far more than it computes (compilation was ~75 % of the in-process tests'
time), so XLA:CPU's LLVM back end runs at optimisation level 0 (~35 % less compile time; the same HLO and
the same ops; every tolerance is unchanged).

In the 8-device process, on a 2-core machine, a device thread can be starved for longer than XLA:CPU's
default 40 s collective rendezvous limit when the machine is busy, and XLA then aborts the process;
the limits are raised (they only matter for a stuck run, which pytest's own time-outs catch).

Many tests compile the same programs again (a new ``jax.jit`` closure, a new training engine, the same
solver at the same shapes, in either xdist worker): the test session shares one persistent compilation
cache, a folder made by the first pytest process (the controller) and removed when it exits. JAX locks the
folder (``filelock``) when the cache has a size limit, so the two workers never read a half-written entry;
a bad entry is only a warning and a recompile. Subprocesses started by tests do not use it. Tracing, and
with it every trace-time check, still runs on a cache hit.
"""

import atexit
import os
import shutil
import tempfile

DEVICES = int(os.environ.get("JAXBEAM_TEST_DEVICES", "1"))

os.environ["XLA_FLAGS"] = " ".join(
    [
        os.environ.get("XLA_FLAGS", ""),
        "--xla_backend_optimization_level=0",
        "--xla_cpu_collective_call_terminate_timeout_seconds=1200",
        "--xla_cpu_collective_call_warn_stuck_timeout_seconds=300",
        "--xla_cpu_collective_timeout_seconds=1200",
    ]
).strip()

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_num_cpu_devices", DEVICES)

if "JAXBEAM_TEST_JIT_CACHE" not in os.environ:  # the controller (or a run without xdist); workers inherit
    os.environ["JAXBEAM_TEST_JIT_CACHE"] = tempfile.mkdtemp(prefix="jaxbeam-test-jit-")
    atexit.register(shutil.rmtree, os.environ["JAXBEAM_TEST_JIT_CACHE"], ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", os.environ["JAXBEAM_TEST_JIT_CACHE"])
jax.config.update("jax_compilation_cache_max_size", 8 << 30)  # a limit turns on the file lock
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


@pytest.fixture
def x64():
    """Float64 inside the test (references and finite differences in double precision)."""
    with jax.enable_x64(True):
        yield


def pytest_collection_modifyitems(config, items):
    """Run ``multidevice`` tests only in an 8-device process (``tests/test_multidevice.py`` starts one)."""
    keep, drop = [], []
    for item in items:
        (drop if (item.get_closest_marker("multidevice") is not None) != (DEVICES > 1) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
