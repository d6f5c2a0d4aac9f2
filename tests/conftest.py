"""Test-wide JAX set-up, made before any backend use.

Devices: one host CPU device. The tests marked ``multidevice`` (data parallelism, 1 device against
several) need more than one; ``tests/test_multidevice.py`` runs them in one pytest subprocess with
``JAXBEAM_TEST_DEVICES=2`` and the main session deselects them. Two devices take the same code path as
eight (a data mesh of more than one device: sharded batches, the cross-device mean of the gradients, a
replicated resident set) at a fraction of the cost on a 2-core machine; every check of "one device
against several" holds for any count > 1. (With 8 virtual devices on 2 cores every other test paid for
it: a label set of 16 SCA samples took 118 s on 8 devices against 17 s on one, and an 8-way program
compiles slower.)

Compilation: the suite compiles far more than it computes (compilation was ~75 % of the in-process tests'
time), so XLA:CPU's LLVM back end runs at optimisation level 0 (~35 % less compile time; the same HLO and
the same ops; every tolerance is unchanged).

In the multi-device process, on a 2-core machine, a device thread can be starved for longer than XLA:CPU's
default 40 s collective rendezvous limit when the machine is busy, and XLA then aborts the process;
the limits are raised (they only matter for a stuck run, which pytest's own time-outs catch).

Many tests compile the same programs again (a new ``jax.jit`` closure, a new training engine, the same
solver at the same shapes, in either xdist worker, and in the next run): the tests share one persistent
compilation cache, kept between runs where the machine is kept, in
``$XDG_CACHE_HOME/jaxbeam-tests/jit-<jax version>-<hash of jaxbeam/**/*.py>`` (``~/.cache`` by default;
``JAXBEAM_TEST_JIT_CACHE`` names another folder, ``off`` turns it off). The first pytest process (the xdist
controller) picks the folder and passes it on to the workers and the ``multidevice`` subprocess in the
environment. Why reuse is safe: JAX keys every entry by the HLO module,
the compile options, the XLA flags, the devices and the jax / jaxlib versions, so an entry is only ever
used for the same program compiled the same way; a stale entry cannot stand in for changed code. The
source hash in the folder's name only bounds the size: a change to the package starts a new folder, and
the controller removes sibling folders that no run has touched for ``_STALE_S`` seconds (not those of a
run that may still be going on, e.g. from a checkout with other sources). JAX locks the folder
(``filelock``) when the cache has a size limit, so two processes never read a half-written entry; a bad
entry (a run killed mid-write) is only a warning and a recompile. Worker scripts started by tests
(``multiprocess_worker.py``; ``resume_worker.py`` has a cache of its own per test) do not use it.
Tracing, and with it every trace-time check, still runs on a cache hit.

Memory maps: every XLA:CPU executable alive in a process holds 3 to about 24 memory mappings (its JIT-linked
code), and JAX keeps every executable it compiled (its caches are per process). Past Linux's
``vm.max_map_count`` (65,530 by default: a few thousand executables, 2,700 of the 24-mapping kind) the next
compilation or cache read fails to map memory inside LLVM and the process dies of a segmentation fault; an
xdist worker that runs half the suite compiles more than that (two CI runs on 2026-12-06 lost a worker so, at
84-94 % of the run). After each test the worker counts its mappings and, past half the limit, drops JAX's
in-process caches (:func:`jaxbeam.jobs.compiled.release_compiled_programs`: later tests compile again, or read
the persistent cache). ``--max-worker-restart=0`` (pyproject) makes any crashed worker end the run at once,
with the crash reported, instead of leaving pytest-xdist waiting for it until CI's time limit.
"""

import hashlib
import os
import shutil
import time
from pathlib import Path

DEVICES = int(os.environ.get("JAXBEAM_TEST_DEVICES", "1"))

_XLA_FLAGS = [
    "--xla_backend_optimization_level=0",
    "--xla_cpu_collective_call_terminate_timeout_seconds=1200",
    "--xla_cpu_collective_call_warn_stuck_timeout_seconds=300",
    "--xla_cpu_collective_timeout_seconds=1200",
]
# once each: the multidevice subprocess inherits them (and the flags are part of the compilation cache's key)
_inherited = os.environ.get("XLA_FLAGS", "").split()
os.environ["XLA_FLAGS"] = " ".join(_inherited + [f for f in _XLA_FLAGS if f not in _inherited])

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_num_cpu_devices", DEVICES)

_STALE_S = 2 * 3600  # longer than any test session: a folder this old belongs to no run going on


def _persistent_jit_cache():
    """``<cache home>/jaxbeam-tests/jit-<jax version>-<sha256 of the package's sources, 16 hex>``, made if
    missing and marked as used now; sibling folders unused for ``_STALE_S`` seconds are removed."""
    pkg = Path(__file__).resolve().parents[1] / "jaxbeam"
    digest = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        digest.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jaxbeam-tests"
    folder = home / f"jit-{jax.__version__}-{digest.hexdigest()[:16]}"
    folder.mkdir(parents=True, exist_ok=True)
    os.utime(folder)  # the folder's mtime: when a run last used it (new entries move it on too)
    for old in home.glob("jit-*"):
        try:
            if old != folder and time.time() - old.stat().st_mtime > _STALE_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # removed by another run meanwhile
            pass
    return str(folder)


if "JAXBEAM_TEST_JIT_CACHE" not in os.environ:  # the controller (or a run without xdist); workers inherit
    os.environ["JAXBEAM_TEST_JIT_CACHE"] = _persistent_jit_cache()
if os.environ["JAXBEAM_TEST_JIT_CACHE"] != "off":
    jax.config.update("jax_compilation_cache_dir", os.environ["JAXBEAM_TEST_JIT_CACHE"])
    jax.config.update("jax_compilation_cache_max_size", 8 << 30)  # a limit turns on the file lock
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def pytest_runtest_teardown(item, nextitem):
    """Drop JAX's compiled programs when this process holds more than half the memory maps Linux allows
    (module docstring: past the limit XLA:CPU segfaults in its next compilation)."""
    if nextitem is not None:
        from jaxbeam.jobs.compiled import release_compiled_programs

        release_compiled_programs(0.5)


@pytest.fixture
def x64():
    """Float64 inside the test (references and finite differences in double precision)."""
    with jax.enable_x64(True):
        yield


def pytest_collection_modifyitems(config, items):
    """Run ``multidevice`` tests only in a multi-device process (``tests/test_multidevice.py`` starts one)."""
    keep, drop = [], []
    for item in items:
        (drop if (item.get_closest_marker("multidevice") is not None) != (DEVICES > 1) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


# --- trained smoke runs shared by several test files (tests/trained_runs.py says why and how) ---------------
@pytest.fixture(scope="session")
def smoke_bert_run(tmp_path_factory):
    """``(run, labels)``: `jaxbeam pretrain --preset smoke` (BERT, 2 epochs x 4 steps: checkpoints 4 and 8) on
    stand-in SR labels at (K, N) = (3, 4) (80 samples, 64 for training), and the labels' folder."""
    from trained_runs import stand_in_labels

    from jaxbeam.cli import main
    from jaxbeam.data.format import save_labels

    root = tmp_path_factory.mktemp("smoke_bert_run")
    labels = save_labels(root / "labels", stand_in_labels())
    assert main(["pretrain", "--preset", "smoke", "--labels", str(labels), "--workdir", str(root / "run")]) == 0
    return root / "run" / "model", labels


@pytest.fixture(scope="session")
def ubert_moe_lora_run(tmp_path_factory):
    """A UBERT MoE-LoRA fine-tuning (rank 2, 2 experts; 2 epochs at lr 1e-2) of a random smoke-sized base
    (features 8, 1 layer) on stand-in label sets of every task at (K, N) = (4, 6) (90 samples each).

    A dict: ``cfg``, ``model``, ``base`` (the base parameters), ``sets`` (task -> LabelSet), ``adapter``,
    ``tuned`` (what :func:`jaxbeam.jobs.pretrain.finetune_ubert` returned), ``dir`` (its run folder) and the
    inputs ``H`` (6 channels at (4, 6)), ``P``."""
    import numpy as np
    from trained_runs import stand_in_labels

    import jaxbeam as jb
    from jaxbeam import configs
    from jaxbeam.jobs.builders import ubert_model
    from jaxbeam.jobs.pretrain import finetune_ubert
    from jaxbeam.models import lora

    cfg = configs.get_preset("smoke", features=8, num_layers=1, epochs=1)
    model = ubert_model(cfg)
    H, P = jb.rayleigh(jax.random.key(5), (6,), 4, 6), np.ones(6, np.float32)
    base = jax.device_get(model.init(jax.random.key(3), H, P, np.zeros(6, np.int32))["params"])  # any base
    sets = {u: stand_in_labels(u, 90, 4, 6, seed=1) for u in jb.TASKS}
    adapter = lora.LoRAConfig(rank=2, experts=2)
    d = tmp_path_factory.mktemp("ubert_moe_lora") / "ft"
    tuned = finetune_ubert(cfg, sets, d, base, epochs=2, learning_rate=1e-2, adapter=adapter, progress=False)
    return dict(cfg=cfg, model=model, base=base, sets=sets, adapter=adapter, tuned=tuned, dir=d, H=H, P=P)


@pytest.fixture(scope="session")
def sao_run(tmp_path_factory):
    """`jaxbeam pretrain --model sao_lift --preset smoke` with :data:`SAO_RUN_ARGS` (one layer, stages (2, 3)
    and (4, 3) in a 4 x 4 model, 2 optimizer steps per dispatch); the run folder ``WORKDIR/model``."""
    from trained_runs import SAO_RUN_ARGS

    from jaxbeam.cli import main

    run = tmp_path_factory.mktemp("sao_run") / "sao"
    assert main(["pretrain", "--model", "sao_lift", "--preset", "smoke", "--workdir", str(run), *SAO_RUN_ARGS]) == 0
    return run / "model"
