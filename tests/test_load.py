"""``jaxbeam.jobs.load.load_beamformer``: every kind of trained run as a pure function usable inside ``jit``,
equal to the model applied by hand with the run's parameters (#36, item 2)."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam import configs, train
from jaxbeam.cli import main
from jaxbeam.configs import get_sao_preset
from jaxbeam.data.format import LabelSet, save_labels, split_ids
from jaxbeam.jobs.builders import bert_model, ubert_model
from jaxbeam.jobs.load import Beamformer, load_beamformer
from jaxbeam.jobs.pretrain import finetune_ubert, task_params
from jaxbeam.jobs.sao import load_sao, sao_model, train_sao
from jaxbeam.models import lora


def _labels(utility="sr", S=80, K=3, N=4, seed=0):
    H = np.asarray(jb.rayleigh(jax.random.key(seed), (S,), K, N))
    P = np.ones(S, np.float32)
    W = np.asarray(jb.rzf(H, P, 0.1)) * (0.5 if utility == "ee" else 1.0)
    U = np.asarray(jb.utility(utility, H, W, 0.1))
    return LabelSet(H=H, W=W, P=P, U=U, split_ids=split_ids(S, seed), meta={"utility": utility, "solver": "rzf"})


def _round_trip(bf: Beamformer, by_hand, H, P):
    W = bf(H, P)
    chex.assert_trees_all_close(W, by_hand(H, P), rtol=1e-6, atol=1e-7)
    Wj = jax.jit(lambda H, P: bf(H, P, bf.sigma2))(H, P)  # inside the caller's jit
    chex.assert_trees_all_close(Wj, W, rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(jb.feasible(W, P)))


def test_bert_run(tmp_path):
    labels = save_labels(tmp_path / "labels", _labels())
    run = tmp_path / "r"
    argv = ["pretrain", "--preset", "smoke", "--labels", str(labels), "--workdir", str(run), "--set", "epochs=1"]
    assert main(argv) == 0
    bf = load_beamformer(run / "model")  # jaxbeam pretrain writes its run to WORKDIR/model
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


def test_ubert_moe_lora_run_per_task(tmp_path):
    cfg = configs.get_preset("smoke", features=8, num_layers=1, epochs=1)
    model = ubert_model(cfg)
    H, P = jb.rayleigh(jax.random.key(5), (6,), 4, 6), jnp.ones(6)
    base = jax.device_get(model.init(jax.random.key(3), H, P, jnp.zeros(6, jnp.int32))["params"])
    sets = {u: _labels(u, 90, 4, 6, seed=1) for u in jb.TASKS}
    adapter = lora.LoRAConfig(rank=2, experts=2)
    tuned = finetune_ubert(cfg, sets, tmp_path / "ft", base, epochs=1, adapter=adapter, progress=False)
    for t, u in enumerate(jb.TASKS):
        bf = load_beamformer(tmp_path / "ft", task=u)
        assert bf.kind == "ubert" and bf.utility == u and bf.N is None
        mixed = task_params(tuned, adapter, t)
        _round_trip(bf, lambda H, P, m=mixed, t=t: model.apply({"params": m}, H, P, jnp.full(6, t)), H, P)
    with pytest.raises(ValueError, match="task must be one of"):
        load_beamformer(tmp_path / "ft")


def test_sao_run(tmp_path):
    cfg = get_sao_preset("smoke")
    train_sao(cfg, tmp_path / "sao", progress=False)
    bf = load_beamformer(tmp_path / "sao")
    assert bf.kind == "sao" and bf.utility == "sr"
    _, params = load_sao(tmp_path / "sao")
    H = jb.rayleigh(jax.random.key(2), (5,), cfg.max_users, cfg.max_antennas)
    _round_trip(bf, lambda H, P: sao_model(cfg, sigma2=cfg.sigma2).apply({"params": params}, H, P), H, cfg.P)
    # the off-schedule benchmark on the same run (sizes inside the smoke model's 4 x 4; a random-mask set)
    from benchmarks import sao_generalisation

    out = tmp_path / "gen.json"
    assert sao_generalisation.main(["--run", str(tmp_path / "sao"), "--sizes", "3", "--samples", "8",
                                    "--out", str(out)]) == 0  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    assert [r["set"] for r in rows] == ["(3, 3)", "random masks in [1, 4] x [1, 4]"]
    assert all(0 < r["MT-SAO"]["quality_pct"] <= 100.5 and r["WMMSE-10"]["quality_pct"] > 90 for r in rows)
    W = bf(H, cfg.P, antenna_mask=jnp.array([True, True, False, True]))
    assert np.all(np.asarray(W[..., 2]) == 0)  # an absent antenna gets no power
