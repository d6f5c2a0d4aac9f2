"""Paper 002's experiment modules (``experiments.sao_*``) end to end on the ``smoke`` preset.

They share one cache of SAO models (one xdist group, file order), as ``experiments.all --suite sao`` does.
Each smoke model costs its compilations (20-40 s on a busy 2-core CPU); CI runs all six modules (the shared
default model trained once through the cache by Fig. 8, the four figures' further models, evaluation beside
LMMSE / ZF / WMMSE, the results files, the timing), about 4 min on one worker.
"""

import importlib
import json

import jax
import numpy as np
import pytest
from experiment_checks import check_results_files

import jaxbeam as jb
from experiments.all import SAO_EXPERIMENTS, estimate_minutes
from experiments.sao_common import SAOContext
from jaxbeam.jobs.sao import sao_model

pytestmark = pytest.mark.xdist_group("sao_experiments")


@pytest.fixture(autouse=True)
def short_ladder(monkeypatch):
    """Two WMMSE-k rungs (1 and 50) beside every point instead of the seven of ``jaxbeam.jobs.sao.LADDER``:
    each rung is one more WMMSE program compiled per (K, N) (most of a smoke point's time), and the code that
    scores, times and matches them is the same for any number of rungs."""
    import experiments.sao_table2_inference_time as table2

    monkeypatch.setattr("jaxbeam.jobs.sao.LADDER", (1, 50))
    monkeypatch.setattr(table2, "LADDER", (1, 50))


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sao_experiments")
    return root / "runs", root / "results"


def _run(name, dirs):
    runs, results = dirs
    module = importlib.import_module(f"experiments.{name}")
    return module.main(["--preset", "smoke", "--runs", str(runs), "--results", str(results), "--quiet"])


@pytest.mark.parametrize("name", list(SAO_EXPERIMENTS))
def test_sao_experiment_runs_on_smoke_and_writes_its_results(name, dirs):
    report = _run(name, dirs)
    _, results = dirs
    payload = check_results_files(name, report, results)
    for r in payload["raw"]:  # WMMSE beside the model on the same channels; % columns against it
        if "wmmse" in r:
            assert r["wmmse"] > 0 and r["rzf_pct"] == pytest.approx(100 * r["rzf"] / r["wmmse"])
            assert (r["zf"] is None) == (r["K"] > r["N"])


def test_fig8_columns_are_the_independent_computations(dirs):
    """Fig. 8's WMMSE, LMMSE and 'steps only' columns recomputed here from the public API on its channels."""
    runs, results = dirs
    if not (results / "sao_fig8_baselines.json").is_file():
        _run("sao_fig8_baselines", dirs)
    raw = json.loads((results / "sao_fig8_baselines.json").read_text())["raw"]
    ctx = SAOContext("smoke", runs, progress=False)
    cfg, _ = ctx.model("default")
    for r in raw:
        H = ctx.channels(r["K"], r["N"])
        W = jb.rzf(H, cfg.P, cfg.sigma2)
        np.testing.assert_allclose(r["rzf"], float(np.mean(jb.sum_rate(H, W, cfg.sigma2))), rtol=1e-5)
        wm = jb.wmmse(H, cfg.P, cfg.sigma2, tol=1e-5)
        np.testing.assert_allclose(r["wmmse"], float(np.mean(jb.sum_rate(H, wm, cfg.sigma2))), rtol=1e-5)
        for _ in range(cfg.num_layers):  # the untrained model = LMMSE + T x Q_i steps
            W = jb.refine(H, W, cfg.P, cfg.sigma2, "sr", cfg.infer_steps, project="sphere")
        np.testing.assert_allclose(r["steps"], float(np.mean(jb.sum_rate(H, W, cfg.sigma2))), rtol=1e-4)
    # the trained model is the cached one, and its column is what the model gives on those channels
    _, params = ctx.model("default")
    H = ctx.channels(raw[0]["K"], raw[0]["N"])
    W = jax.jit(lambda p, H: sao_model(cfg).apply({"params": p}, H, cfg.P))(params, H)
    np.testing.assert_allclose(raw[0]["sao"], float(np.mean(jb.sum_rate(H, W, cfg.sigma2))), rtol=1e-4)


def test_configs_differing_in_q_i_alone_share_one_trained_model(dirs):
    """Training reads Q_t, never Q_i: one cached model, returned with the Q_i asked for."""
    runs, _ = dirs
    ctx = SAOContext("smoke", runs, progress=False)
    cfg_a, params_a = ctx.model("a", infer_steps=1)
    cfg_b, params_b = ctx.model("b", infer_steps=4)
    assert (cfg_a.infer_steps, cfg_b.infer_steps) == (1, 4)
    assert ctx.trained["a"]["workdir"] == ctx.trained["b"]["workdir"]
    jax.tree.map(np.testing.assert_array_equal, params_a, params_b)


def test_table2_times_every_scheme(dirs):
    _, results = dirs
    if not (results / "sao_table2_inference_time.json").is_file():
        _run("sao_table2_inference_time", dirs)
    raw = {r["scheme"]: r for r in json.loads((results / "sao_table2_inference_time.json").read_text())["raw"]}
    assert {"WMMSE", "MT-SAO-lift", "LMMSE", "ZF"} <= set(raw)
    assert all(r["seconds_per_batch"] > 0 and r["sum_rate"] > 0 for r in raw.values())
    assert raw["WMMSE"]["paper_seconds"] == 8.782 and raw["MT-SAO-lift"]["paper_seconds"] == 0.042


def test_budget_flags_are_refused_and_all_counts_the_sao_models(tmp_path):
    module = importlib.import_module("experiments.sao_fig8_baselines")
    with pytest.raises(SystemExit, match="--steps does not apply"):
        module.main(["--preset", "smoke", "--steps", "10", "--runs", str(tmp_path)])
    assert estimate_minutes("cpu", suite="sao") == 20.0 * sum(SAO_EXPERIMENTS.values())
    assert estimate_minutes("cpu", suite="all") > estimate_minutes("cpu", suite="bert4beam")
    assert estimate_minutes("paper", suite="sao") is None
