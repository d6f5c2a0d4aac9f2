"""UBERT training: the multi-task source (Algorithm 1), scale-free validation, data-parallel steps,
pre-training and fine-tuning end to end (tiny configs)."""

import json
import shutil

import chex
import jax
import numpy as np
import optax
import pytest
from trained_runs import TRAINED_RUNS

import jaxbeam as jb
from jaxbeam import configs, train
from jaxbeam.data.format import LabelSet, split_ids
from jaxbeam.jobs.adapters import load_adapters
from jaxbeam.jobs.builders import ubert_batch_size, ubert_model
from jaxbeam.jobs.evaluate import performance_rows
from jaxbeam.jobs.pretrain import finetune_ubert, pretrain_ubert, task_params
from jaxbeam.models import lora
from jaxbeam.train.losses_multitask import make_multitask_loss
from jaxbeam.train.task_weighting import DynamicWeightAverage


def _labels(utility, S=60, K=3, N=4, seed=0):
    """Stand-in label sets (RZF beams, EE at half power): fast and deterministic."""
    H = np.asarray(jb.rayleigh(jax.random.key(seed), (S,), K, N))
    P = np.ones(S, np.float32)
    W = np.asarray(jb.rzf(H, P, 0.1)) * (0.5 if utility == "ee" else 1.0)
    U = np.asarray(jb.utility(utility, H, W, 0.1))
    return LabelSet(H=H, W=W, P=P, U=U, split_ids=split_ids(S, seed), meta={"utility": utility, "solver": "rzf"})


def _arrays(S, K=3, N=4, seed=0):
    return train.label_arrays(_labels("sr", S, K, N, seed))


def _same(a, b):
    return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_uniform_source_has_exactly_equal_task_counts_in_every_batch():
    sizes = (30, 41, 35)
    data = {u: _arrays(s, seed=i) for i, (u, s) in enumerate(zip(jb.TASKS, sizes, strict=True))}
    src = train.MultiTaskSource(data, 12, seed=1)
    assert src.steps_per_epoch == 30 // 4 and src.sizes == sizes
    seen = {t: [] for t in range(3)}
    for i, batch in enumerate(src.epoch(0)):
        assert np.bincount(batch["task"], minlength=3).tolist() == [4, 4, 4]
        np.testing.assert_array_equal(batch["task"][:3], [0, 1, 2])  # interleaved: device shards balanced
        task, index = src.batch_indices(0, i)
        for t in range(3):
            rows = index[task == t]
            seen[t] += rows.tolist()
            np.testing.assert_array_equal(batch["H"][task == t], data[jb.TASKS[t]]["H"][rows])
            np.testing.assert_array_equal(batch["W_label"][task == t], data[jb.TASKS[t]]["W_label"][rows])
    for t in range(3):
        assert len(seen[t]) == len(set(seen[t])) == 28  # without replacement within an epoch
    rnd = train.MultiTaskSource(data, 12, seed=1, sampling="random")
    counts = [np.bincount(b["task"], minlength=3).tolist() for b in rnd.epoch(0)]
    assert any(c != [4, 4, 4] for c in counts) and all(sum(c) == 12 for c in counts)
    with pytest.raises(ValueError, match="batch_size"):
        train.MultiTaskSource(data, 10)
    with pytest.raises(ValueError, match="every task"):
        train.MultiTaskSource({"sr": data["sr"], "mr": data["mr"]}, 12)
    with pytest.raises(ValueError, match="sampling"):
        train.MultiTaskSource(data, 12, sampling="greedy")


@pytest.mark.parametrize("sampling", ["uniform", "random"])
def test_multitask_source_resumes_exactly(sampling):
    data = [_labels(u, 45, seed=0) for u in jb.TASKS]  # LabelSets sharing channels, in TASKS order
    make = lambda: train.MultiTaskSource(data, 9, seed=7, sampling=sampling, transform=train.symmetry_augment)  # noqa: E731
    full = {e: list(make().epoch(e)) for e in (0, 1)}
    assert len(full[0]) == make().steps_per_epoch == 15
    for e, start in ((0, 4), (1, 0), (1, 14)):
        resumed = list(make().epoch(e, start=start))  # a fresh source, as after a restart
        assert len(resumed) == len(full[e]) - start
        assert all(_same(a, b) for a, b in zip(resumed, full[e][start:], strict=True))
    assert not _same(full[0][0], full[1][0])  # a new order every epoch


def test_mixed_K_and_N_are_padded_with_masks():
    data = {
        "sr": _arrays(12, 3, 4),
        "mr": [_arrays(12, 2, 5, seed=1), _arrays(6, 3, 4, seed=2)],
        "ee": _arrays(15, 3, 4),
    }
    src = train.MultiTaskSource(data, 6, seed=0)
    batch = next(src.epoch(0))
    assert batch["H"].shape == (6, 3, 5) and batch["mask"].shape == (6, 3) and batch["antenna_mask"].shape == (6, 5)
    assert np.all(batch["H"][~batch["mask"]] == 0) and np.all(
        np.swapaxes(batch["H"], 1, 2)[~batch["antenna_mask"]] == 0
    )
    sr = batch["task"] == 0
    assert batch["antenna_mask"][sr].sum(1).tolist() == [4, 4]
    with pytest.raises(ValueError, match="transform"):
        train.MultiTaskSource(data, 6, transform=train.symmetry_augment)
    model = jb.models.UBERT(features=8, num_layers=1, num_heads=2)
    args = (batch["H"], batch["P"], batch["task"], batch["mask"], batch["antenna_mask"])
    W = jax.jit(model.apply)(jax.jit(model.init)(jax.random.key(0), *args), *args)
    loss, metrics = jax.jit(make_multitask_loss())(W, batch)
    assert np.all(np.isfinite(np.asarray(loss))) and np.all(np.isfinite(np.asarray(metrics["utility"])))


@pytest.mark.parametrize("sampling", ["uniform", "random"])
def test_resident_multitask_source_gathers_the_host_batches(sampling):
    """``MultiTaskSource(on_device=True)``: batches are task ids and rows of the three data sets placed once on
    the devices; the step's gather gives exactly the host batch (mixed sizes with masks); augmentation keys."""
    data = {
        "sr": _arrays(12, 3, 4),
        "mr": [_arrays(12, 2, 5, seed=1), _arrays(6, 3, 4, seed=2)],
        "ee": _arrays(15, 3, 4),
    }
    host = train.MultiTaskSource(data, 6, seed=2, sampling=sampling)
    dev = train.MultiTaskSource(data, 6, seed=2, sampling=sampling, on_device=True)
    assert dev.resident["H"].shape == (45, 3, 5) and dev.steps_per_epoch == host.steps_per_epoch
    for hb, db in zip(host.epoch(1, start=1), dev.epoch(1, start=1), strict=True):
        assert set(db) == {"index", "task"} and db["index"].dtype == np.int32
        chex.assert_trees_all_equal(jax.device_get(dev.prepare(db, dev.resident)), hb)
    same = {u: _arrays(12, 3, 4, seed=t) for t, u in enumerate(jb.TASKS)}
    aug = train.MultiTaskSource(same, 6, transform=train.symmetry_augment, on_device=True)
    b = next(aug.epoch(0))
    assert b["aug_key"].shape == (6, 2)
    out = jax.device_get(aug.prepare(b, aug.resident))
    rows = aug.resident["H"][b["index"]]
    assert not np.allclose(out["H"], rows)  # transformed, with every gain magnitude kept
    np.testing.assert_allclose(
        np.abs(out["H"] @ np.conj(np.swapaxes(out["W_label"], 1, 2))),
        np.abs(rows @ np.conj(np.swapaxes(aug.resident["W_label"][b["index"]], 1, 2))),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="on_device=True takes transform=None or symmetry_augment"):
        train.MultiTaskSource(same, 6, on_device=True, transform=lambda b, rng: b)


def test_validation_utility_is_scale_free():
    labels = {u: _labels(u, 12, seed=3) for u in jb.TASKS}
    arrays = train.multitask_arrays(labels)
    _, m = make_multitask_loss()(arrays["W_label"], arrays)
    np.testing.assert_allclose(m["utility"], 1.0, rtol=1e-5)  # the label scores 1 on every task
    for t in range(3):
        sel = arrays["task"] == t
        np.testing.assert_allclose(m["task_utility"][sel], labels[jb.TASKS[t]].U, rtol=1e-5)
    scale = [float(labels[u].U.mean()) for u in jb.TASKS]
    _, m2 = make_multitask_loss(utility_scale=scale)(arrays["W_label"], arrays)
    # mean over a balanced set = mean over tasks of eq. 31 / 100
    np.testing.assert_allclose(np.mean(m2["utility"]), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="utility_scale"):
        make_multitask_loss(utility_scale=(1.0, 2.0))


@pytest.mark.multidevice
def test_data_parallel_ubert_step_equals_single_device():
    n = jax.device_count()
    assert n > 1  # tests/conftest.py (tests/test_multidevice.py sets 2)
    model = jb.models.UBERT(features=16, num_layers=1, num_heads=2)
    data = {u: _labels(u, 48, seed=5) for u in jb.TASKS}
    batch = next(train.MultiTaskSource(data, 24, seed=0).epoch(0))
    loss_fn = make_multitask_loss()
    tx = optax.sgd(1e-2)  # SGD: see tests/test_train.py (Adam amplifies round-off of zero gradients)
    e8 = train.Engine(model, loss_fn, tx)  # all n devices
    e1 = train.Engine(model, loss_fn, tx, mesh=train.data_mesh(jax.devices()[:1]))
    s8 = e8.init_state(jax.random.PRNGKey(0), batch)
    s1 = e1.init_state(jax.random.PRNGKey(0), batch)
    b8 = e8.put_batch(batch)
    assert len(b8["task"].sharding.device_set) == n
    s8, m8 = e8.train_step(s8, b8)
    s1, m1 = e1.train_step(s1, e1.put_batch(batch))
    chex.assert_trees_all_close(jax.device_get(s8["params"]), jax.device_get(s1["params"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(m8["loss"]), float(m1["loss"]), rtol=1e-5)
    np.testing.assert_allclose(float(m8["utility"]), float(m1["utility"]), rtol=1e-5)


def test_pretrain_ubert_end_to_end_then_finetune_without_reinit(tmp_path):
    cfg = configs.get_preset("smoke", features=8, num_layers=1, epochs=2)
    labels = {u: _labels(u, 120, seed=0) for u in jb.TASKS}
    params = pretrain_ubert(cfg, labels, tmp_path / "pre", progress=False)
    conf = json.loads((tmp_path / "pre" / "config.json").read_text())
    assert conf["model_kind"] == "ubert" and conf["epochs_planned"] == 2
    # B / 3 per task and an equal share per device: the smoke preset's 16 -> 15 on one device, 24 on 8
    assert conf["batch_size_used"] == ubert_batch_size(16)
    assert (ubert_batch_size(16, 1), ubert_batch_size(16, 8)) == (15, 24)
    assert len(conf["utility_scale"]) == 3
    records = [json.loads(line) for line in (tmp_path / "pre" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "val_utility" in r] == [0, 1]
    assert all(0 < r["val_utility"] < 2 for r in records if "val_utility" in r)
    model = ubert_model(cfg)
    for t, u in enumerate(jb.TASKS):
        (row,) = performance_rows(
            u,
            labels[u].split("test"),
            0.1,
            0.5,
            model=model,
            params=params,
            task=t,
            model_name="ubert",
            references=("rzf",),
        )
        assert 0 < row["ubert"] < 150 and "bert" not in row
    # fine-tuning at another (K, N) on one task: every parameter starts from the pre-trained ones
    new = {"mr": _labels("mr", 60, K=4, N=6, seed=1)}
    tuned = finetune_ubert(cfg, new, tmp_path / "ft", params, epochs=1, learning_rate=1e-9, progress=False)
    chex.assert_trees_all_close(tuned, jax.device_get(params), atol=1e-6)
    wider = configs.get_preset("smoke", features=16, num_layers=1)
    with pytest.raises(ValueError, match="init_params"):
        finetune_ubert(wider, new, tmp_path / "ft2", params, epochs=1, progress=False)
    with pytest.raises(ValueError, match="every task"):
        pretrain_ubert(cfg, {"sr": labels["sr"]}, tmp_path / "x", progress=False)
    # the data sets resident on the device train the same parameters as host batches (round-off; without
    # augmentation, whose draws differ between the host and the device)
    dev = configs.get_preset("smoke", features=8, num_layers=1, epochs=1, on_device=True)
    on_dev = pretrain_ubert(dev, labels, tmp_path / "pre_dev", augment=False, progress=False)
    on_host = configs.get_preset("smoke", features=8, num_layers=1, epochs=1)
    host = pretrain_ubert(on_host, labels, tmp_path / "pre_host", augment=False, progress=False)
    chex.assert_trees_all_close(jax.device_get(on_dev), jax.device_get(host), rtol=1e-4, atol=1e-5)
    tuned_dev = finetune_ubert(dev, new, tmp_path / "ft_dev", params, epochs=1, learning_rate=1e-9, progress=False)
    chex.assert_trees_all_close(tuned_dev, jax.device_get(params), atol=1e-6)


@TRAINED_RUNS
def test_ubert_adapter_finetuning_trains_only_task_gated_experts(ubert_moe_lora_run, tmp_path):
    """MoE-LoRA on UBERT (003 eq. 24, #18): the base stays bit-identical, the gate learns a mix per task (its
    weights sum to 1), each task's merged parameters compute the adapted model, and the adapters are stored.
    The fine-tuning is the shared ``ubert_moe_lora_run`` (tests/conftest.py: rank 2, 2 experts, 2 epochs at
    lr 1e-2 on every task at (K, N) = (4, 6)); a copy of its folder is resumed here."""
    run = ubert_moe_lora_run
    cfg, model, params, new, adapter, tuned = (run[k] for k in ("cfg", "model", "base", "sets", "adapter", "tuned"))
    H, P = run["H"], run["P"]
    chex.assert_trees_all_equal(tuned["base"], params)  # frozen: not one bit moved
    assert any(float(np.abs(x["B"]).max()) > 0 for x in tuned["lora"]["layers"].values())  # B starts at 0
    w = lora.expert_weights(tuned["lora"], np.arange(3))
    for wt in w.values():
        np.testing.assert_allclose(np.sum(wt, axis=-1), 1.0, rtol=1e-6)
    assert any(not np.allclose(wt[0], wt[1]) for wt in w.values())  # the tasks keep their own mix
    for t in range(3):
        task = np.full(6, t, np.int32)
        adapted = lora.apply(model, tuned["base"], tuned["lora"], adapter, H, P, task, task=task)
        merged = model.apply({"params": task_params(tuned, adapter, t)}, H, P, task)
        np.testing.assert_allclose(np.asarray(merged), np.asarray(adapted), rtol=1e-4, atol=1e-5)
    stored, _ = load_adapters(run["dir"] / "adapters", tuned["base"])
    chex.assert_trees_all_equal(stored, jax.device_get(tuned["lora"]))
    ft = tmp_path / "ft"
    shutil.copytree(run["dir"], ft)
    again = finetune_ubert(cfg, new, ft, params, epochs=2, learning_rate=1e-2, adapter=adapter,
                           progress=False)  # fmt: skip  # the finished run is loaded, not retrained
    chex.assert_trees_all_equal(jax.device_get(again), jax.device_get(tuned))
    with pytest.raises(ValueError, match="adapter"):  # the same folder under another adapter config
        finetune_ubert(cfg, new, ft, params, epochs=2, learning_rate=1e-2,
                       adapter=lora.LoRAConfig(rank=2), progress=False)  # fmt: skip


# ------------------------------------------------------------------------------ DWA task weighting
def test_dwa_weights_are_liu_et_al_eq7():
    dwa = DynamicWeightAverage(temperature=2.0)
    assert dwa.keys == ("loss_sr", "loss_mr", "loss_ee")
    rec = lambda sr, mr, ee: {"train_loss_sr": sr, "train_loss_mr": mr, "train_loss_ee": ee}  # noqa: E731
    np.testing.assert_array_equal(dwa.weights([]), [1, 1, 1])
    np.testing.assert_array_equal(dwa.weights([rec(0.3, 0.2, 0.1)]), [1, 1, 1])  # first two epochs: 1
    np.testing.assert_array_equal(dwa.weights([{"loss": 1.0}, rec(0.3, 0.2, 0.1)]), [1, 1, 1])  # before DWA
    before, last = np.array([0.4, 0.2, 0.1]), np.array([0.2, 0.18, 0.1])
    w = dwa.weights([rec(9, 9, 9), rec(*before), rec(*last)])  # the two latest epochs count
    r = last / before  # independent: eq. 7 written out term by term
    expect = [3 * np.exp(r[k] / 2) / sum(np.exp(r[i] / 2) for i in range(3)) for k in range(3)]
    np.testing.assert_allclose(w, expect, rtol=1e-6)
    assert w.dtype == np.float32 and w.sum() == pytest.approx(3) and w[2] > w[1] > w[0]  # slowest task gains
    # a large temperature tends to equal weights; a task without samples (loss 0) counts r = 1
    np.testing.assert_allclose(DynamicWeightAverage(1e6).weights([rec(*before), rec(*last)]), 1, rtol=1e-5)
    w0 = dwa.weights([rec(0.4, 0.0, 0.1), rec(0.2, 0.0, 0.1)])
    np.testing.assert_allclose(w0[1], w0[2])
    with pytest.raises(ValueError, match="non-negative"):
        dwa.weights([rec(-1, 1, 1), rec(-2, 1, 1)])
    for bad in (0, -1.0, float("inf"), True, "2"):
        with pytest.raises(ValueError, match="temperature"):
            DynamicWeightAverage(bad)
    with pytest.raises(ValueError, match="'task' entry"):
        dwa.attach({"H": np.zeros((2, 3, 4), np.complex64)}, w)


def test_task_weight_multiplies_the_loss_and_leaves_the_task_losses():
    labels = _labels("sr", 12)
    batch = {"H": labels.H, "W_label": labels.W, "task": np.arange(12) % 3}
    W = np.asarray(jb.mrt(labels.H, 1.0))
    loss_fn = make_multitask_loss(sigma2=0.1)
    loss, m = loss_fn(W, batch)
    w = np.array([0.5, 2.0, 0.5], np.float32)
    loss_w, m_w = loss_fn(W, DynamicWeightAverage.attach(batch, w))
    np.testing.assert_allclose(loss_w, np.asarray(loss) * w[batch["task"]], rtol=1e-6)
    chex.assert_trees_all_close(m_w, m)


def _dwa_fit(workdir, max_steps=None):
    data = [_labels(u, 60, seed=0) for u in jb.TASKS]
    src = train.MultiTaskSource(data, 9, seed=3)
    cfg = configs.get_preset("smoke", features=8, num_layers=1)
    return train.fit(
        ubert_model(cfg),
        make_multitask_loss(sigma2=0.1),
        src,
        epochs=4,
        learning_rate=3e-3,
        workdir=workdir,
        checkpoint_every=2,
        max_steps=max_steps,
        progress=False,
        task_weighting=DynamicWeightAverage(),
    )


def test_dwa_training_uses_the_history_and_resumes_to_the_same_parameters(tmp_path):
    full = _dwa_fit(tmp_path / "full")
    hist = full.history
    assert [r["task_weights"] for r in hist[:2]] == [[1.0, 1.0, 1.0]] * 2
    for e in (2, 3):  # each epoch's weights come from the two before it
        np.testing.assert_allclose(hist[e]["task_weights"], DynamicWeightAverage().weights(hist[:e]), rtol=1e-6)
        assert hist[e]["task_weights"] != [1.0, 1.0, 1.0]
    assert all(r["train_loss_sr"] > 0 for r in hist)
    # killed mid-epoch 2 (after a mid-epoch checkpoint), then resumed: the same weights and parameters
    per_epoch = hist[0]["step"]
    _dwa_fit(tmp_path / "cut", max_steps=2 * per_epoch + 3)
    resumed = _dwa_fit(tmp_path / "cut")
    strip = lambda h: [{k: v for k, v in r.items() if k != "train_seconds"} for r in h]  # noqa: E731
    assert strip(resumed.history) == strip(hist)
    chex.assert_trees_all_equal(jax.device_get(resumed.state["params"]), jax.device_get(full.state["params"]))
