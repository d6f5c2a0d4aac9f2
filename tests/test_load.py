"""``jaxbeam.jobs.load.load_beamformer``: every kind of trained run as a pure function usable inside ``jit``,
equal to the model applied by hand with the run's parameters (#36, item 2).

The runs are the shared trained smoke runs of tests/conftest.py (one xdist group: ``trained_runs``)."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from trained_runs import TRAINED_RUNS

import jaxbeam as jb
from jaxbeam import configs, train
from jaxbeam.jobs.builders import bert_model
from jaxbeam.jobs.load import Beamformer, load_beamformer
from jaxbeam.jobs.pretrain import task_params
from jaxbeam.jobs.sao import load_sao, sao_model

pytestmark = TRAINED_RUNS


def _round_trip(bf: Beamformer, by_hand, H, P):
    W = bf(H, P)
    chex.assert_trees_all_close(W, by_hand(H, P), rtol=1e-6, atol=1e-7)
    Wj = jax.jit(lambda H, P: bf(H, P, bf.sigma2))(H, P)  # inside the caller's jit
    chex.assert_trees_all_close(Wj, W, rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(jb.feasible(W, P)))


def test_bert_run(smoke_bert_run, tmp_path):
    run, _ = smoke_bert_run  # `jaxbeam pretrain --preset smoke` on stand-in SR labels at (3, 4)
    bf = load_beamformer(run)  # jaxbeam pretrain writes its run to WORKDIR/model
    assert bf.kind == "bert" and bf.utility == "sr" and bf.N == 4
    cfg = configs.get_preset("smoke")
    params = train.load_params(bf.run_dir, which="best")
    H, P = jb.rayleigh(jax.random.key(1), (6,), 3, 4), jnp.ones(6)
    _round_trip(bf, lambda H, P: bert_model(cfg).apply({"params": params}, H, P), H, P)
    with pytest.raises(ValueError, match="sigma2 must be the noise power this BERT was trained at"):
        bf(H, P, 0.5)
    with pytest.raises(ValueError, match="task: .* single-task BERT"):
        load_beamformer(bf.run_dir, task="ee")
    with pytest.raises(ValueError, match=r"run_dir .* \(no config.json\)"):
        load_beamformer(tmp_path)


def test_ubert_moe_lora_run_per_task(ubert_moe_lora_run):
    run = ubert_moe_lora_run  # a MoE-LoRA fine-tuning of UBERT on every task at (K, N) = (4, 6)
    model, adapter, tuned, H, P = run["model"], run["adapter"], run["tuned"], run["H"], jnp.ones(6)
    for t, u in enumerate(jb.TASKS):
        bf = load_beamformer(run["dir"], task=u)
        assert bf.kind == "ubert" and bf.utility == u and bf.N is None
        mixed = task_params(tuned, adapter, t)
        _round_trip(bf, lambda H, P, m=mixed, t=t: model.apply({"params": m}, H, P, jnp.full(6, t)), H, P)
    with pytest.raises(ValueError, match="task must be one of"):
        load_beamformer(run["dir"])


def test_sao_run(sao_run, tmp_path, monkeypatch):
    bf = load_beamformer(sao_run)  # `jaxbeam pretrain --model sao_lift --preset smoke` (one layer)
    assert bf.kind == "sao" and bf.utility == "sr"
    cfg, params = load_sao(sao_run)
    H = jb.rayleigh(jax.random.key(2), (5,), cfg.max_users, cfg.max_antennas)
    _round_trip(bf, lambda H, P: sao_model(cfg, sigma2=cfg.sigma2).apply({"params": params}, H, P), H, cfg.P)
    # the off-schedule benchmark on the same run (sizes inside the smoke model's 4 x 4; a random-mask set)
    from benchmarks import sao_generalisation

    # two WMMSE-k rungs (each rung is a program compiled per row; the row code is the same for any number)
    monkeypatch.setattr(sao_generalisation, "BUDGETS", (1, 10))
    out = tmp_path / "gen.json"
    assert sao_generalisation.main(["--run", str(sao_run), "--sizes", "3", "--samples", "8",
                                    "--out", str(out)]) == 0  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    assert [r["set"] for r in rows] == ["(3, 3)", "random masks in [1, 4] x [1, 4]"]
    assert all(0 < r["MT-SAO"]["quality_pct"] <= 100.5 and r["WMMSE-10"]["quality_pct"] > 90 for r in rows)
    W = bf(H, cfg.P, antenna_mask=jnp.array([True, True, False, True]))
    assert np.all(np.asarray(W[..., 2]) == 0)  # an absent antenna gets no power
