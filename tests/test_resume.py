"""Training survives SIGKILL at any instant, corrupted checkpoints and resumes, and keeps its time budget.

The kill-and-resume test runs ``tests/resume_worker.py`` (BERT pre-training, UBERT multi-task
pre-training and frozen-encoder fine-tuning, one after the other in one process) once uninterrupted, then
kills it with SIGKILL at points drawn from a fixed seed (random steps with random sub-step delays, some
aimed right after a checkpoint write was started, others at a random time after start-up) and restarts
it until it finishes. Everything it wrote must equal the uninterrupted run bit for bit.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import chex
import jax
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam import train
from jaxbeam.data.format import LabelSet, split_ids
from jaxbeam.train import losses

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "resume_worker.py"
JOBS = {"bert": 12, "ubert": 24, "finetune": 12}  # training steps of each job (resume_worker.py)
SAVE_EVERY = 2  # resume_worker.CHECKPOINT_EVERY
KILLS_PER_JOB = 5


def _spawn(root, cache):
    # XLA_FLAGS inherited (tests/conftest.py: XLA:CPU at -O0; the worker's time is mostly compilation); the
    # reference and the killed runs share them, so "bit-identical" compares the same programs
    env = {**os.environ, "JAXBEAM_TEST_JAX_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(root), *JOBS],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _run_to_end(root, cache):
    p = _spawn(root, cache)
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0 and out.rstrip().endswith("DONE"), out[-2000:]


def _kill_at(root, cache, target, delay):
    """Start the worker, SIGKILL it ``delay`` s after it announces a batch at or past ``target`` =
    (job index, step) (None: ``delay`` s after start). Returns whether it was killed before finishing."""
    p = _spawn(root, cache)
    order = list(JOBS)
    try:
        if target is None:
            time.sleep(delay)
        else:
            for line in p.stdout:
                parts = line.split()
                if parts[:1] == ["BATCH"] and (order.index(parts[1]), int(parts[2])) >= target:
                    time.sleep(delay)
                    break
        killed = p.poll() is None
        p.send_signal(signal.SIGKILL)
    finally:
        p.stdout.close()
        p.wait(timeout=60)
    return killed


def _kill_points(rng, step_seconds, per_job):
    """Per job: ``per_job`` kills, 2 of 5 right after a checkpoint write started, the others at random steps
    with random delays."""
    points = []
    at_save = max(1, 2 * per_job // 5)
    for j, steps in enumerate(JOBS.values()):
        saves = rng.choice(np.arange(SAVE_EVERY, steps, SAVE_EVERY), at_save, replace=False)
        points += [((j, int(s)), float(rng.uniform(0, 0.02))) for s in saves]  # batch s (0-based) follows save(s)
        random = rng.integers(1, steps, per_job - at_save)
        points += [((j, int(s)), float(rng.uniform(0, 3 * step_seconds))) for s in random]
    return sorted(points)


def _without_timing(path):
    return [{k: v for k, v in json.loads(x).items() if k != "train_seconds"} for x in path.read_text().splitlines()]


@pytest.mark.parametrize(
    "per_job", [1, pytest.param(KILLS_PER_JOB, marks=pytest.mark.slow)], ids=["1_kill_per_job", "5_kills_per_job"]
)
def test_sigkill_at_random_points_then_resume_is_bit_identical(tmp_path, per_job):
    cache = tmp_path / "jax_cache"
    ref, run = tmp_path / "ref", tmp_path / "run"
    t0 = time.perf_counter()
    _run_to_end(ref, cache)
    duration = time.perf_counter() - t0
    rng = np.random.default_rng(1234)
    points = _kill_points(rng, step_seconds=0.05, per_job=per_job)
    points.append((None, float(rng.uniform(0, duration))))  # and one at a random time of the whole run
    killed = [_kill_at(run, cache, target, delay) for target, delay in points]
    assert sum(killed) >= len(points) - 2, killed  # (a kill may come after the end)
    for _ in range(3):  # restart until it finishes (one restart is enough; a failing one would repeat)
        p = _spawn(run, cache)
        out, _ = p.communicate(timeout=600)
        if p.returncode == 0:
            break
    assert p.returncode == 0, out[-2000:]
    for name in JOBS:
        a, b = np.load(ref / f"{name}.npz"), np.load(run / f"{name}.npz")
        assert a.files == b.files
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}: {k}")
        assert _without_timing(ref / name / "metrics.jsonl") == _without_timing(run / name / "metrics.jsonl")
        left = sorted(p.name for p in (run / name / "checkpoints").iterdir())
        assert left == [str(JOBS[name] - SAVE_EVERY), str(JOBS[name])], left  # two kept, no temporary dirs


# --- in-process tests: corrupted checkpoints, the time budget, determinism ---------------------------------

K, N = 3, 4


def _labels(S=60, seed=0):
    H = np.asarray(jb.rayleigh(jax.random.key(seed), (S,), K, N))
    P = np.ones(S, np.float32)
    W = np.asarray(jb.rzf(H, P, 0.1))
    return LabelSet(H=H, W=W, P=P, U=np.asarray(jb.sum_rate(H, W, 0.1)), split_ids=split_ids(S, seed), meta={})


def _fit(workdir, *, source=None, devices=1, **kw):
    ls = _labels()
    src = source or train.ArraySource(train.label_arrays(ls.split("train")), 8, seed=3)
    kw = {"epochs": 2, "learning_rate": 3e-3, "checkpoint_every": 2, "log_every": 1, **kw}
    return train.fit(
        jb.models.BERT(num_antennas=N, features=16, num_layers=2, num_heads=2),
        losses.make_loss("sr", supervised=True, lambda1=1.0, lambda2=0.1),
        src,
        val=train.label_arrays(ls.split("val")),
        workdir=workdir,
        progress=False,
        mesh=train.data_mesh(jax.devices()[:devices]),
        **kw,
    )


def _array_files(step_dir):
    return sorted(p for p in (step_dir / "arrays").rglob("*") if p.is_file() and "/d/" in str(p))


def test_corrupted_checkpoints_fall_back_or_raise_checkpoint_error(tmp_path):
    ref = _fit(tmp_path / "ref")  # 6 steps per epoch, 12 in all; checkpoints 10 and 12 are kept
    run = tmp_path / "run"
    _fit(run)
    ck = run / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["10", "12"]
    for f in _array_files(ck / "12"):  # truncate every array file of the newest step
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.warns(UserWarning, match=str(ck / "12")):
        best = train.load_params(run)  # falls back to step 10 (whose best is that of epoch 0)
    assert jax.tree.structure(best) == jax.tree.structure(ref.best_params)
    with pytest.warns(UserWarning, match="resuming from step 10"):
        again = _fit(run)  # resumes from step 10 and trains steps 11, 12 again
    chex.assert_trees_all_equal(jax.device_get(again.state["params"]), jax.device_get(ref.state["params"]))
    chex.assert_trees_all_equal(again.best_params, ref.best_params)
    timing = "train_seconds"
    assert [{k: v for k, v in r.items() if k != timing} for r in again.history] == [
        {k: v for k, v in r.items() if k != timing} for r in ref.history
    ]  # the resumed epoch's mean loss included
    # a flipped byte that keeps every file's size: caught by the checksums
    f = max(_array_files(ck / "12"), key=lambda p: p.stat().st_size)
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    for step in ("10", "12"):  # then garble the metadata of both steps: nothing readable is left
        (ck / step / "arrays" / "_METADATA").write_text("{garbled")
    with pytest.raises(train.CheckpointError, match=str(ck)):
        train.load_params(run)
    with pytest.raises(train.CheckpointError, match=str(ck)):
        _fit(run)
    assert sorted(p.name for p in ck.iterdir()) == ["10", "12"]  # an unreadable run is not deleted


def test_leftover_step_and_temporary_directory_do_not_wedge_resume(tmp_path):
    """The SIGKILL wedge: a step directory already on disk (from a killed run) and a half-written
    temporary directory; the restarted run must neither raise StepAlreadyExistsError nor keep the tmp dir."""
    ref = _fit(tmp_path / "ref")
    run = tmp_path / "run"
    _fit(run, max_steps=7)  # checkpoints 4 and 6 (epoch end), killed after step 7
    ck = run / "checkpoints"
    tmp = ck / "8.orbax-checkpoint-tmp-1234"
    tmp.mkdir()
    (tmp / "junk").write_text("half written")
    import shutil

    shutil.copytree(ck / "6", ck / "8")  # a step 8 that "exists" but holds step 6's content
    raw = json.loads((ck / "8" / "meta" / "metadata").read_text())
    raw["crc32"] = {k: 0 for k in raw["crc32"]}  # ...and does not verify
    (ck / "8" / "meta" / "metadata").write_text(json.dumps(raw))
    with pytest.warns(UserWarning, match="resuming from step 6"):
        done = _fit(run)
    chex.assert_trees_all_equal(jax.device_get(done.state["params"]), jax.device_get(ref.state["params"]))
    assert not tmp.exists()
    assert _without_timing(run / "metrics.jsonl") == _without_timing(tmp_path / "ref" / "metrics.jsonl")


class _Slow:
    """A source whose every batch takes at least ``seconds`` to produce (a lower bound on step time)."""

    def __init__(self, source, seconds):
        self.source, self.seconds, self.steps_per_epoch = source, seconds, source.steps_per_epoch

    def epoch(self, e, *, start=0):
        for batch in self.source.epoch(e, start=start):
            time.sleep(self.seconds)
            yield batch


def test_time_budget_is_counted_across_kills(tmp_path):
    """Defect 6: the seconds spent before a kill count against ``max_train_seconds`` after the resume."""
    ls = _labels()
    src = _Slow(train.ArraySource(train.label_arrays(ls.split("train")), 8, seed=3), 0.1)
    budget, dt = 1.5, 0.1  # >= 0.1 s per step: at most 15 steps fit in the budget, plus the one that ends it
    kw = dict(source=src, epochs=50, checkpoint_every=1, max_train_seconds=budget)
    # killed after 4 steps (>= 0.4 s), checkpointed at every step; few enough that even a busy machine has
    # budget left at the kill (with 9, 0.17 s steps spent it all before the kill and nothing was resumed)
    _fit(tmp_path, max_steps=4, **kw)
    res = _fit(tmp_path, **kw)
    steps = int(res.state["step"])
    spent = res.history[-1]["train_seconds"]
    assert spent >= dt * steps  # every step's time is counted, those before the kill included
    assert budget <= spent and steps <= budget / dt + 1
    again = _fit(tmp_path, **kw)  # budget spent: nothing more is trained
    assert int(again.state["step"]) == steps and again.history == res.history


@pytest.mark.multidevice
def test_same_seed_same_parameters_and_1_vs_several_devices(tmp_path):
    a = _fit(None, epochs=1)
    b = _fit(None, epochs=1)
    chex.assert_trees_all_equal(jax.device_get(a.state["params"]), jax.device_get(b.state["params"]))
    assert jax.device_count() > 1  # tests/conftest.py (tests/test_multidevice.py sets 2)
    c = _fit(None, epochs=1, devices=jax.device_count())
    pa, pc = jax.device_get(a.state["params"]), jax.device_get(c.state["params"])
    # Adam turns the round-off-level gradient of the attention key bias (exactly 0: softmax is invariant
    # to it) into sign-random steps; every other parameter agrees to float32 round-off.
    flat_a = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_flatten_with_path(pa)[0]}
    flat_c = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_flatten_with_path(pc)[0]}
    checked = 0
    for k, v in flat_a.items():
        if "['key']['bias']" in k:
            continue
        np.testing.assert_allclose(flat_c[k], v, rtol=2e-4, atol=2e-5, err_msg=k)
        checked += 1
    assert checked > 20
    np.testing.assert_allclose(c.history[-1]["val_utility"], a.history[-1]["val_utility"], rtol=1e-4)
