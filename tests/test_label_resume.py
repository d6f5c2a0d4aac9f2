"""Label generation that survives anything: SIGKILL at random moments, truncated or corrupted chunks and
finished files, the same command on a finished set (a no-op), other settings on it (an error naming them)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxbeam.data.format import load_labels
from jaxbeam.data.generate import generate_labels

ARGS = dict(utility="sr", K=3, N=4, P_levels=[1.0, 2.0], samples=40, seed=5)
TIMING = ("seconds_last_session",)
ARRAYS = ("H", "W", "P", "U", "split_ids")


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    return generate_labels(out, **ARGS, chunk_size=8, progress=False)


def assert_same(a, b):
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    strip = lambda m: {k: v for k, v in m.items() if k not in TIMING}  # noqa: E731
    assert strip(a.meta) == strip(b.meta)


def test_truncated_or_unchecksummed_chunk_is_resolved_with_a_warning(ref, tmp_path, capfd):
    assert generate_labels(tmp_path, **ARGS, chunk_size=8, progress=False, max_chunks=3) is None
    chunks = tmp_path / "chunks"
    bad = chunks / "000_000001.npz"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # np.load would raise zipfile.BadZipFile
    (chunks / "000_000002.npz.sha256").unlink()  # killed between the chunk and its checksum
    labels = generate_labels(tmp_path, **ARGS, chunk_size=8, progress=False)
    err = capfd.readouterr().err
    assert "000_000001.npz checksum mismatch" in err and "000_000002.npz no checksum" in err
    assert sum("warning" in line for line in err.splitlines()) == 2  # one line per discarded chunk
    assert_same(labels, ref)


def test_the_same_command_on_a_finished_set_is_a_noop(ref, tmp_path):
    generate_labels(tmp_path, **ARGS, chunk_size=8, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = generate_labels(tmp_path, **ARGS, chunk_size=8, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps  # nothing re-solved or rewritten
    assert_same(again, ref)


def test_a_corrupted_finished_file_is_detected_and_regenerated(ref, tmp_path, capfd):
    generate_labels(tmp_path, **ARGS, chunk_size=8, progress=False)
    H = tmp_path / "H.npy"
    H.write_bytes(H.read_bytes()[:-40])  # cut short
    with pytest.raises(ValueError, match=r"H\.npy is corrupted or truncated"):
        load_labels(tmp_path)
    W = tmp_path / "W.npy"
    data = bytearray(W.read_bytes())
    data[-3] ^= 0xFF  # one flipped byte: the shape is right, the checksum is not
    W.write_bytes(bytes(data))
    labels = generate_labels(tmp_path, **ARGS, chunk_size=8, progress=False)
    assert "regenerating" in capfd.readouterr().err
    assert_same(labels, ref)
    assert_same(load_labels(tmp_path), ref)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"sigma2": 1.0}, "sigma2"), ({"Pc": 0.2}, "Pc")],
)
def test_other_settings_on_a_finished_set_stop_naming_the_field(ref, tmp_path, change, field):
    generate_labels(tmp_path, **ARGS, chunk_size=8, progress=False)
    with pytest.raises(ValueError, match=rf"other settings \({field}: stored"):
        generate_labels(tmp_path, **{**ARGS, **change}, chunk_size=8, progress=False)


WORKER = """
import sys
import jax
jax.config.update("jax_compilation_cache_dir", sys.argv[2])  # restarts skip the compile, as a rerun would
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
from jaxbeam.data.generate import generate_labels
generate_labels(sys.argv[1], utility="sr", K=3, N=4, P_levels=[1.0, 2.0], samples=40, seed=5, chunk_size=8,
                devices=jax.local_devices()[:1], progress=False)
"""


def _launch(out: Path, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-c", WORKER, str(out), str(cache)], env=env, stderr=subprocess.DEVNULL)


def _wait_for(proc, cond, timeout=300.0):
    t0 = time.monotonic()
    while proc.poll() is None and not cond():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("the label worker made no progress")
        time.sleep(0.002)


@pytest.mark.parametrize("kills", [5, pytest.param(12, marks=pytest.mark.slow)])
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path, kills):
    """SIGKILLs from a fixed seed: ``kills`` after a random number of chunks were written (plus a random
    few ms; a restart that already has that many is killed at once, while starting), one once all chunks
    exist (assembly of the finished files); then one uninterrupted restart. The result equals an
    uninterrupted run's bit for bit (the same single device)."""
    import jax

    ref = generate_labels(tmp_path / "ref", **ARGS, chunk_size=8, devices=jax.local_devices()[:1], progress=False)
    out, cache = tmp_path / "out", tmp_path / "jax_cache"
    rng = np.random.default_rng(14)
    n_chunks = 10  # 2 power levels x 5 chunks of 8
    targets = sorted(rng.choice(np.arange(1, n_chunks), size=kills, replace=kills > n_chunks - 1).tolist())
    count = lambda: len(list((out / "chunks").glob("*.npz"))) if (out / "chunks").is_dir() else 0  # noqa: E731
    killed_at = []
    for target in [*targets, n_chunks]:
        proc = _launch(out, cache)
        _wait_for(proc, lambda t=target: count() >= t or (out / "meta.json").is_file())
        time.sleep(rng.uniform(0.0, 0.005))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_at.append(count())
        proc.wait()
    assert len(killed_at) >= kills, killed_at  # the kills hit running workers
    proc = _launch(out, cache)
    assert proc.wait(timeout=300) == 0
    assert_same(load_labels(out), ref)
    assert not (out / "chunks").exists()
    sums = json.loads((out / "meta.json").read_text())["sha256"]
    assert set(sums) == {f"{a}.npy" for a in ("H", "W", "P", "U", "split")}
