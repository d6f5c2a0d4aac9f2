"""Label data sets: exact resume after an interrupt, device-count independence, format, split, CLI."""

import json

import jax
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam import cli
from jaxbeam.data.format import load_labels
from jaxbeam.data.generate import generate_labels

ARGS = dict(utility="sr", K=3, N=4, P_levels=[1.0, 2.0], samples=40, seed=5)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return out, generate_labels(out, **ARGS, chunk_size=16, progress=False)


def test_format_meta_and_split(full):
    out, labels = full
    assert len(labels) == 80 and labels.H.shape == (80, 3, 4) and labels.W.dtype == np.complex64
    for name in ("H", "W", "P", "U", "split"):  # plain numpy loads every array
        assert np.load(out / f"{name}.npy").shape[0] == 80
    meta = json.loads((out / "meta.json").read_text())
    for key in ("solver", "tol", "seed", "sigma2", "P", "Pc", "K", "N", "package_version", "mean_utility"):
        assert key in meta, key
    assert meta["solver"] == "wmmse" and meta["tol"] == 1e-4 and meta["P"] == [1.0, 2.0]
    np.testing.assert_allclose(meta["mean_utility"]["2.0"], labels.U[labels.P == 2.0].mean(), rtol=1e-6)
    assert np.bincount(labels.split_ids).tolist() == [64, 8, 8]
    assert np.all(np.sum(np.abs(labels.W) ** 2, (1, 2)) <= labels.P * (1 + 1e-5))
    assert not (out / "chunks").exists()
    # power levels share nothing: different channels per level
    assert not np.allclose(labels.H[:40], labels.H[40:])


def test_resume_after_interrupt_is_identical(full, tmp_path):
    _, ref = full
    assert generate_labels(tmp_path, **ARGS, chunk_size=16, progress=False, max_chunks=2) is None
    assert len(list((tmp_path / "chunks").glob("*.npz"))) == 2
    # a crash mid-write leaves only a temporary file, which is ignored
    (tmp_path / "chunks" / ".000_000002.npz.tmp").write_bytes(b"partial")
    labels = generate_labels(tmp_path, **ARGS, chunk_size=16, progress=False)
    for name in ("H", "W", "P", "U", "split_ids"):
        np.testing.assert_array_equal(getattr(labels, name), getattr(ref, name), err_msg=name)
    generate_labels(tmp_path / "x", **ARGS, chunk_size=16, progress=False, max_chunks=1)
    with pytest.raises(ValueError, match="other settings"):
        generate_labels(tmp_path / "x", **{**ARGS, "seed": 6}, chunk_size=16, progress=False)


@pytest.mark.multidevice
def test_result_does_not_depend_on_device_count(full, tmp_path):
    _, ref = full
    assert jax.local_device_count() > 1  # tests/conftest.py (tests/test_multidevice.py sets 2)
    one = generate_labels(tmp_path, **ARGS, chunk_size=16, devices=jax.local_devices()[:1], progress=False)
    np.testing.assert_array_equal(one.H, ref.H)
    np.testing.assert_allclose(one.U, ref.U, rtol=1e-5)
    np.testing.assert_allclose(one.W, ref.W, atol=1e-4)


def test_cli_label(tmp_path, capsys):
    out = tmp_path / "mr"
    argv = ["label", "--utility", "mr", "--K", "2", "--N", "3", "--P", "1", "--samples", "8", "--chunk", "8"]
    assert cli.main(argv + ["--out", str(out), "--no-progress"]) == 0
    labels = load_labels(out)
    assert len(labels) == 8 and labels.meta["solver"] == "exact" and labels.meta["utility"] == "mr"
    assert "mean utility" in capsys.readouterr().out
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert cli.main(argv + ["--out", str(out), "--no-progress"]) == 0  # the same command again: a no-op
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    assert cli.main(argv + ["--out", str(out), "--no-progress", "--sigma2", "1"]) == 2
    assert "sigma2: stored 0.1, expected 1.0" in capsys.readouterr().err
    assert cli.main(argv + ["--out", str(tmp_path / "e"), "--solver", "wmmse"]) == 2
    assert "--solver" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["label", "--help"])
    assert "example: jaxbeam label" in capsys.readouterr().out


def test_channel_sources_and_per_antenna_labels(full, tmp_path, capsys):
    """Other channel sources draw other channels and are part of the identity; Rayleigh's identity is unchanged
    (recorded by name, as before sources existed); ``wmmse-antenna`` labels keep every antenna's P / N."""
    _, ref = full
    assert ref.meta["channel"] == "rayleigh" and ref.meta["constraint"].startswith("total")
    pl = generate_labels(tmp_path / "pl", **ARGS, chunk_size=16, progress=False, channel="pathloss",
                         channel_args={"exponent": 3.0})  # fmt: skip
    assert pl.meta["channel"] == {"name": "pathloss", "radius": 250.0, "min_distance": 35.0, "exponent": 3.0,
                                  "shadowing_db": 8.0}  # fmt: skip
    assert not np.allclose(pl.H, ref.H)
    gains = np.mean(np.abs(pl.H) ** 2, axis=-1)
    assert gains.max() / gains.min() > 100  # near and far users
    with pytest.raises(ValueError, match="channel: stored"):
        generate_labels(tmp_path / "pl", **ARGS, chunk_size=16, progress=False, channel="pathloss")
    with pytest.raises(ValueError, match="channel must be one of"):
        generate_labels(tmp_path / "x", **ARGS, chunk_size=16, progress=False, channel="umi")
    pa = generate_labels(tmp_path / "pa", **ARGS, chunk_size=16, progress=False, solver="wmmse-antenna")
    col = np.sum(np.abs(pa.W.astype(np.complex128)) ** 2, axis=-2)
    assert np.all(col <= (pa.P / 4)[:, None] * (1 + 1e-6)) and pa.meta["constraint"].startswith("per-antenna")
    np.testing.assert_array_equal(pa.H, ref.H)  # the same channels, a smaller feasible set (local optima per sample)
    assert 0.8 * ref.U.mean() < pa.U.mean() <= ref.U.mean()
    scaled = np.asarray(jb.sum_rate(pa.H, jb.scale_antenna_power(ref.W, pa.P[:, None] / 4), 0.1))
    assert np.all(pa.U >= scaled * (1 - 1e-5))  # never below the total-power labels scaled to the budgets
    mr = generate_labels(tmp_path / "mr", **{**ARGS, "utility": "mr"}, chunk_size=16, progress=False,
                         solver="sca-antenna")  # fmt: skip
    col = np.sum(np.abs(mr.W.astype(np.complex128)) ** 2, axis=-2)
    assert np.all(col <= (mr.P / 4)[:, None] * (1 + 1e-5)) and mr.meta["constraint"].startswith("per-antenna")
    np.testing.assert_allclose(mr.U, jb.min_rate(mr.H, mr.W, 0.1), rtol=1e-5)
    argv = ["label", "--utility", "sr", "--K", "2", "--N", "3", "--P", "1", "--samples", "8", "--chunk", "8",
            "--no-progress", "--channel", "correlated", "--channel-arg", "rho=0.9"]  # fmt: skip
    assert cli.main(argv + ["--out", str(tmp_path / "c")]) == 0
    assert load_labels(tmp_path / "c").meta["channel"] == {"name": "correlated", "rho": 0.9, "max_angle_deg": 60.0}
    assert cli.main(argv[:-1] + ["rho", "--out", str(tmp_path / "d")]) == 2
    assert "--channel-arg must be NAME=NUMBER" in capsys.readouterr().err
    assert cli.main(argv[:-1] + ["theta=1", "--out", str(tmp_path / "d")]) == 2
    assert "has no parameter(s) ['theta']" in capsys.readouterr().err


def test_constraint_comes_from_the_solver_table_and_convergence_is_recorded(full, tmp_path):
    """Strict per-antenna sets say per-antenna (the constraint was read from the name's ending, so
    ``*-antenna-strict`` sets were recorded as total-power ones), and every set records its converged share."""
    from jaxbeam.data.generate import SOLVER_POWER, SOLVERS

    assert set(SOLVER_POWER) == {s for ss in SOLVERS.values() for s in ss}
    _, ref = full
    assert ref.meta["converged"]["samples"] == 80 and ref.meta["converged"]["share"] == 1.0
    assert set(ref.meta["converged"]["per_level"]) == {"1.0", "2.0"}
    args = {**ARGS, "samples": 8}
    strict = generate_labels(tmp_path / "s", **args, chunk_size=8, progress=False, solver="wmmse-antenna-strict")
    assert strict.meta["constraint"] == "per-antenna, P / N each"
    assert strict.meta["converged"]["share"] == 1.0  # the strict stop is reached on every sample
    col = np.sum(np.abs(strict.W.astype(np.complex128)) ** 2, axis=-2)
    assert np.all(col <= (strict.P / 4)[:, None] * (1 + 1e-5))
    capped = generate_labels(tmp_path / "c", **args, chunk_size=8, progress=False, solver="sca", tol=1e-9)
    assert 0.0 <= capped.meta["converged"]["share"] <= 1.0
