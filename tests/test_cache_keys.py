"""Cache keys: label sets and trained models are reused only for the settings that made them."""

import shutil

import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam import configs
from jaxbeam.data.format import fingerprint, label_identity, load_labels
from jaxbeam.data.generate import _solve_chunk_fn, label_config
from jaxbeam.jobs.builders import build_model
from jaxbeam.jobs.labels import labels_for
from jaxbeam.jobs.pretrain import pretrain
from jaxbeam.jobs.runs import model_identity


def _cfg(**over):
    return configs.get_preset("smoke", P=(1.0,), **over)


@pytest.fixture(scope="module")
def sr_sets(tmp_path_factory):
    """``(root, {sigma2: SR label set})``: 40 samples at (3, 4), P = 1, sigma2 0.1 and 1.0, one cache root."""
    root = tmp_path_factory.mktemp("cache")
    return root, {s2: labels_for(root, _cfg(sigma2=s2), "sr", 3, 40, 0, progress=False) for s2 in (0.1, 1.0)}


def test_labels_for_keys_sigma2_and_the_set_is_solved_at_its_own_sigma2(sr_sets):
    root, sets = sr_sets
    low, high = sets[0.1], sets[1.0]
    assert len(list((root / "labels").iterdir())) == 2 and high.meta["sigma2"] == 1.0
    np.testing.assert_array_equal(low.H, high.H)  # same seed: same channels, other noise
    H, P = jnp.asarray(high.H), jnp.asarray(high.P)
    u_wmmse = np.asarray(jb.sum_rate(H, jb.wmmse(H, P, 1.0), 1.0))
    np.testing.assert_allclose(high.U, u_wmmse, rtol=1e-4)  # the 1.0 set really is WMMSE at sigma2 = 1
    assert np.all(np.abs(low.U - u_wmmse) > 0.1)  # and the 0.1 set is not (what the old cache returned)


def test_labels_for_keys_pc_for_ee(tmp_path):
    a = labels_for(tmp_path, _cfg(Pc=0.5), "ee", 3, 16, 0, progress=False)
    hits = _solve_chunk_fn.cache_info().hits
    b = labels_for(tmp_path, _cfg(Pc=0.05), "ee", 3, 16, 0, progress=False)
    assert _solve_chunk_fn.cache_info().hits == hits + 1  # Pc is an argument: the same compiled chunk program
    assert (a.meta["Pc"], b.meta["Pc"]) == (0.5, 0.05)
    H = jnp.asarray(b.H)
    ee = lambda W: np.asarray(jb.energy_efficiency(H, jnp.asarray(W), 0.1, Pc=0.05))  # noqa: E731
    np.testing.assert_allclose(b.U, ee(b.W), rtol=1e-4)  # its utility is EE at Pc = 0.05
    # optimised for the smaller circuit power, its beams beat the Pc = 0.5 labels there (which use more power)
    assert ee(b.W).mean() > ee(a.W).mean() * 1.001
    assert np.sum(np.abs(b.W) ** 2) < np.sum(np.abs(a.W) ** 2)


def test_a_hand_copied_label_folder_is_checked_on_load(sr_sets, tmp_path):
    root, sets = sr_sets
    (src,) = (root / "labels").glob(f"sr_3x4_s0-{fingerprint(label_identity(sets[0.1].meta))}")
    ident = label_identity(sets[0.1].meta)
    assert ident["sigma2"] == 0.1 and ident["solver"] == "wmmse" and ident["channel"] == "rayleigh"
    # the folder the sigma2 = 1 set would use, filled by hand with the sigma2 = 0.1 set
    key = fingerprint(label_config("sr", 3, 4, [1.0], 40, 0, sigma2=1.0, Pc=0.5))
    shutil.copytree(src, tmp_path / "labels" / f"sr_3x4_s0-{key}")
    with pytest.raises(ValueError, match=r"sigma2: stored 0\.1, expected 1\.0"):
        labels_for(tmp_path, _cfg(sigma2=1.0), "sr", 3, 40, 0, progress=False)


def test_a_model_run_stops_on_another_config_budget_or_label_set(sr_sets, tmp_path):
    cfg = _cfg()
    labels, other = sr_sets[1][0.1], sr_sets[1][1.0]
    run = tmp_path / "run"
    pretrain(cfg, labels, run, steps=4, progress=False)  # reuse of the same run: test_cli_jobs, test_experiments
    with pytest.raises(ValueError, match=r"config\.train\.learning_rate: stored 0\.001, expected 0\.01"):
        pretrain(_cfg(learning_rate=1e-2), labels, run, steps=4, progress=False)
    with pytest.raises(ValueError, match=r"budget\.steps: stored 4, expected 6"):
        pretrain(cfg, labels, run, steps=6, progress=False)
    with pytest.raises(ValueError, match=r"config\.model\.features: stored 16, expected 32"):
        pretrain(_cfg(features=32), labels, run, steps=4, progress=False)
    with pytest.raises(ValueError, match=r"labels\.labels"):
        pretrain(cfg, other, run, steps=4, progress=False)
    assert load_labels(next((sr_sets[0] / "labels").iterdir())).meta["label_version"] >= 2


def test_experiment_cache_paths_depend_on_every_setting(tmp_path):
    from experiments.common import BUDGETS, Context

    ctx = Context("cpu", tmp_path)
    fast = Context("cpu", tmp_path, budget=BUDGETS["cpu"].__class__(**{**BUDGETS["cpu"].__dict__, "steps": 100}))
    assert ctx.ubert_dir(6, 12) != fast.ubert_dir(6, 12)
    assert ctx.ubert_dir(6, 12) == Context("cpu", tmp_path).ubert_dir(6, 12)
    assert ctx.ubert_dir(6, 12) != ctx.ubert_dir(6, 12, head="structured")
    a, b = ctx.label_identity("mr", 6, 12), ctx.label_identity("mr", 6, 12, test=True)
    assert a["solver"] == "exact" and a["seed"] != b["seed"] and a["samples_per_level"] == 3000
    assert ctx.budget.train_budget() == {"steps": 5000, "machine_dependent": False}
    assert ctx.budget.train_budget(3) == {"steps": 15000, "machine_dependent": False}


def test_late_fields_at_their_defaults_keep_every_cache_key(tmp_path):
    """Options added after caches were keyed (token domain, DWA task weights) leave the keys of runs that do not
    use them unchanged: the folder names below are those of commit 868854d, before those options existed, with
    the label identity of label version 3 (the version is part of every model's key)."""
    from experiments.common import Context

    ctx = Context("cpu", tmp_path)
    assert ctx.pretrained_dir("bert", "sr", 6, 12).name == "bert_sr_6x12_P1-2-3_supervised-dbbf8611753f"
    assert ctx.pretrained_dir("bert", "mr", 8, 16).name == "bert_mr_8x16_P1-2-3_supervised-2b2b6bf417ab"
    assert ctx.ubert_dir(6, 12).name == "ubert-full-balanced_6x12_P1-2-3_uniform_proposed-a973572b4366"
    assert ctx.ubert_dir(6, 12, head="element", loss="sum").name.endswith("-5932888f7529")
    # the options themselves are keyed
    assert ctx.ubert_dir(6, 12, weighting="dwa").name.startswith(
        "ubert-full-balanced_6x12_P1-2-3_uniform_proposed_dwa-"
    )
    angle = build_model("bert", configs.get_preset("cpu", domain="angle"), 6, 12)
    assert "domain = 'angle'" in model_identity(angle)
    assert "domain" not in model_identity(build_model("bert", configs.get_preset("cpu"), 6, 12))
