"""Training engine: data-parallel gradients, exact resume, fine-tuning rules, frozen encoder, presets."""

import dataclasses
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxbeam as jb
from jaxbeam import configs, train
from jaxbeam.data.format import LabelSet, split_ids
from jaxbeam.jobs import builders
from jaxbeam.train import losses

K, N = 3, 4


def _model(N=N, features=16):
    return jb.models.BERT(num_antennas=N, features=features, num_layers=2, num_heads=2)


def _labels(S=120, seed=0, N=N):
    H = np.asarray(jb.rayleigh(jax.random.key(seed), (S,), K, N))
    P = np.ones(S, np.float32)
    W = np.asarray(jb.rzf(H, P, 0.1))  # a stand-in label solver: fast and deterministic
    U = np.asarray(jb.sum_rate(H, W, 0.1))
    return LabelSet(H=H, W=W, P=P, U=U, split_ids=split_ids(S, seed), meta={"solver": "rzf"})


def _strip_key(params):
    """The parameters but the attention key projections: the key bias has an exact gradient of 0 (softmax
    ignores it) and Adam turns its round-off into full steps, so runs that agree elsewhere differ there."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {jax.tree_util.keystr(k): v for k, v in leaves if "key" not in jax.tree_util.keystr(k)}


def _max_rel_diff(a, b):
    """max |a - b| / max |b| over a whole pytree (per-leaf ratios are meaningless for leaves whose exact
    gradient is 0, e.g. the attention key bias, where both sides are round-off noise)."""
    a, b = jax.device_get(a), jax.device_get(b)
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    return diff / max(float(np.max(np.abs(y))) for y in jax.tree.leaves(b))


@pytest.mark.multidevice
def test_data_parallel_gradients_and_step_equal_single_device():
    n = jax.device_count()
    assert n > 1, "JAXBEAM_TEST_DEVICES > 1 (tests/conftest.py; tests/test_multidevice.py sets 2)"
    model = _model()
    loss_fn = losses.make_loss("sr", supervised=True, lambda1=1.0, lambda2=0.1)
    # SGD for the one-step comparison: Adam divides by sqrt(v), which turns the round-off-level gradients
    # of parameters whose exact gradient is 0 (the attention key bias) into full-size, sign-random steps.
    tx = optax.sgd(1e-2)
    batch = train.label_arrays(_labels(16))
    e8 = train.Engine(model, loss_fn, tx)  # all n devices (e8: the name from when n was 8)
    e1 = train.Engine(model, loss_fn, tx, mesh=train.data_mesh(jax.devices()[:1]))
    assert e8.num_shards == n and e1.num_shards == 1
    s8 = e8.init_state(jax.random.PRNGKey(0), batch)
    s1 = e1.init_state(jax.random.PRNGKey(0), batch)
    b8 = e8.put_batch(batch)
    assert len(b8["H"].sharding.device_set) == n
    g8 = e8.grads(s8["params"], b8)
    g1 = e1.grads(s1["params"], e1.put_batch(batch))
    assert _max_rel_diff(g8, g1) < 1e-5  # an extra pmean/psum would be off by a factor of n
    assert _max_rel_diff(jax.tree.map(lambda g: n * g, g8), g1) > (n - 1) / 2  # ...and this check would see it
    # a resident data set: replicated on the n devices, each gathers its own rows of the batch by index
    src = train.ArraySource(batch, 16, shuffle=False, on_device=True)
    r8 = train.Engine(model, loss_fn, tx, source=src)
    assert r8.resident["H"].sharding.is_fully_replicated and len(r8.resident["H"].sharding.device_set) == n
    assert _max_rel_diff(r8.grads(s8["params"], r8.put_batch(next(src.epoch(0)))), g1) < 1e-5
    s8, m8 = e8.train_step(s8, b8)
    s1, m1 = e1.train_step(s1, e1.put_batch(batch))
    chex.assert_trees_all_close(jax.device_get(s8["params"]), jax.device_get(s1["params"]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(m8["loss"]), float(m1["loss"]), rtol=1e-5)
    assert int(s8["step"]) == 1
    # a chunk of 3 steps in one dispatch, sharded over the batch axis, against 3 single-device steps
    chunk = [train.label_arrays(_labels(16, seed=s)) for s in (1, 2, 3)]
    placed = e8.put_chunk(chunk)
    assert placed["H"].shape[:2] == (3, 16) and len(placed["H"].sharding.device_set) == n
    s8, m8 = e8.train_chunk(s8, placed)
    for b in chunk:
        s1, _ = e1.train_step(s1, e1.put_batch(b))
    chex.assert_trees_all_close(jax.device_get(s8["params"]), jax.device_get(s1["params"]), rtol=1e-5, atol=1e-6)
    assert m8["loss"].shape == (3,) and int(s8["step"]) == 4


def test_evaluate_pads_the_last_batch_and_weights_it_out():
    model = _model()
    loss_fn = losses.make_loss("sr", supervised=False)
    arrays = train.label_arrays(_labels(13), with_labels=False)
    eng = train.Engine(model, loss_fn, train.make_optimizer(1e-3, 10))
    state = eng.init_state(jax.random.PRNGKey(1), arrays)
    got = eng.evaluate(state["params"], arrays, batch_size=8)
    W = model.apply({"params": state["params"]}, arrays["H"], arrays["P"])
    np.testing.assert_allclose(got["utility"], float(jnp.mean(jb.sum_rate(arrays["H"], W, 0.1))), rtol=1e-5)


def _fit(workdir, labels, *, source=None, **kw):
    src = source or train.ArraySource(train.label_arrays(labels.split("train")), 16, seed=3)
    val = train.label_arrays(labels.split("val"))
    loss_fn = losses.make_loss("sr", supervised=True, lambda1=1.0, lambda2=0.1)
    return train.fit(
        _model(),
        loss_fn,
        src,
        epochs=3,
        learning_rate=3e-3,
        val=val,
        workdir=workdir,
        checkpoint_every=4,
        progress=False,
        log_every=2,
        config={"test": True},
        **kw,
    )


def test_killed_and_restarted_run_ends_with_the_parameters_of_an_uninterrupted_run(tmp_path):
    labels = _labels(120)  # 96 train samples -> 6 steps per epoch, 18 in all
    ref = _fit(tmp_path / "ref", labels)
    assert [r["step"] for r in ref.history] == [6, 12, 18]
    assert (tmp_path / "ref" / "config.json").is_file()
    log = (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()
    assert len(log) == 9 + 3  # every 2 steps + one record per epoch
    for kill_at in (7, 12):  # mid-epoch (last checkpoint at 6), and right at an epoch end before validation
        part = _fit(tmp_path / f"run{kill_at}", labels, max_steps=kill_at)
        assert int(part.state["step"]) == kill_at
        done = _fit(tmp_path / f"run{kill_at}", labels)
        assert int(done.state["step"]) == 18
        chex.assert_trees_all_equal(jax.device_get(done.state["params"]), jax.device_get(ref.state["params"]))
        chex.assert_trees_all_equal(done.best_params, ref.best_params)
        assert done.best_metric == ref.best_metric
    best = train.load_params(tmp_path / "ref")
    chex.assert_trees_all_equal(best, ref.best_params)
    assert ref.best_metric == max(r["val_utility"] for r in ref.history)


def test_steps_per_call_scans_the_same_steps_and_resumes_exactly(tmp_path):
    """``fit(steps_per_call=4)``: chunks of 4 and 2 (checkpoints every 4, epochs of 6), the parameters and
    log of one step per call to round-off, and a killed chunked run resumes bit-identically."""
    labels = _labels(120)
    ref = _fit(tmp_path / "ref", labels)
    run = _fit(tmp_path / "chunked", labels, steps_per_call=4)
    assert [r["step"] for r in run.history] == [6, 12, 18]

    assert _max_rel_diff(_strip_key(run.state["params"]), _strip_key(ref.state["params"])) < 1e-4
    np.testing.assert_allclose([r["loss"] for r in run.history], [r["loss"] for r in ref.history], rtol=1e-4)
    logs = [
        [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in ("ref", "chunked")
    ]
    assert [r.get("step") for r in logs[1]] == [r.get("step") for r in logs[0]]  # every 2 steps + per epoch
    for a, b in zip(*logs, strict=True):
        assert a.keys() == b.keys()
        np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-4)
    part = _fit(tmp_path / "killed", labels, steps_per_call=4, max_steps=11)
    assert int(part.state["step"]) == 11
    done = _fit(tmp_path / "killed", labels, steps_per_call=4)
    chex.assert_trees_all_equal(jax.device_get(done.state["params"]), jax.device_get(run.state["params"]))
    assert done.best_metric == run.best_metric
    with pytest.raises(ValueError, match="steps_per_call must be an int >= 1"):
        _fit(tmp_path / "bad", labels, steps_per_call=0)


def test_finetune_loading_rules():
    H4 = jb.rayleigh(jax.random.key(0), (2,), K, 4)
    H6 = jb.rayleigh(jax.random.key(0), (2,), K, 6)
    pre = _model(4).init(jax.random.key(1), H4, 1.0)["params"]
    same = _model(4).init(jax.random.key(2), H4, 1.0)["params"]
    chex.assert_trees_all_equal(train.transfer_params(pre, same), pre)
    fresh = _model(6).init(jax.random.key(3), H6, 1.0)["params"]
    out = train.transfer_params(pre, fresh)
    chex.assert_trees_all_equal(out["encoder"], pre["encoder"])
    chex.assert_trees_all_equal(out["embed"], fresh["embed"])
    chex.assert_trees_all_equal(out["head"], fresh["head"])
    _model(6).apply({"params": out}, H6, 1.0)  # fits the new model
    wider = _model(6, features=32).init(jax.random.key(3), H6, 1.0)["params"]
    with pytest.raises(ValueError, match="encoder"):
        train.transfer_params(pre, wider)


def test_frozen_encoder_mode_trains_only_embedding_and_head():
    model = _model(6)
    src = train.ChannelSource(K, 6, [1.0, 2.0], 16, 3, seed=5)
    H6 = jb.rayleigh(jax.random.key(0), (2,), K, 6)
    init = model.init(jax.random.key(4), H6, 1.0)["params"]
    labels = train.trainable_labels(init)
    assert set(jax.tree.leaves(labels["encoder"])) == {"frozen"}
    res = train.fit(
        model,
        losses.make_loss("sr", supervised=False),
        src,
        epochs=1,
        learning_rate=1e-2,
        init_params=init,
        trainable_labels=labels,
        progress=False,
    )
    after = jax.device_get(res.state["params"])
    chex.assert_trees_all_equal(after["encoder"], jax.device_get(init["encoder"]))
    for part in ("embed", "head"):
        assert _max_rel_diff(after[part], jax.device_get(init[part])) > 1e-4
    with pytest.raises(ValueError, match="trainable"):
        train.trainable_labels(init, trainable=("nope",))


def test_presets():
    cpu, paper = configs.get_preset("cpu"), configs.get_preset("paper")
    assert (paper.model.features, paper.model.num_layers, paper.model.num_heads) == (1024, 12, 16)
    assert (paper.train.learning_rate, paper.train.batch_size, paper.train.epochs) == (2e-4, 32, 100)
    assert paper.train.samples_per_power == 80_000 and paper.system.P == (1.0, 2.0, 3.0)
    assert (cpu.system.K, cpu.system.N) == (6, 12)
    c = configs.get_preset("smoke", features=32, epochs=3, P=(1, 2))
    assert c.model.features == 32 and c.train.epochs == 3 and c.system.P == (1.0, 2.0)
    assert configs.Config.from_dict(c.to_dict()) == c
    hash(c)
    with pytest.raises(ValueError, match="name"):
        configs.get_preset("gpu")
    with pytest.raises(ValueError, match="unknown config field"):
        configs.get_preset("cpu", featurez=3)
    with pytest.raises(ValueError, match="num_heads"):
        configs.get_preset("cpu", features=130)
    with pytest.raises(ValueError, match="utility"):
        configs.get_preset("cpu", utility="xx")
    assert cpu.model.ubert_head == "balanced" and builders.ubert_model(cpu).head == "balanced"
    assert builders.ubert_model(configs.get_preset("cpu", sigma2=0.2)).sigma2 == 0.2
    element = configs.get_preset("cpu", ubert_head="element")
    assert builders.ubert_model(element).head == "element"
    with pytest.raises(ValueError, match="ubert_head"):
        configs.get_preset("cpu", ubert_head="linear")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.model.features = 3
    # a field added later is out of the dict (every cache key) at the default that behaves as before
    assert "on_device" not in cpu.to_dict()["train"]
    dev = configs.get_preset("cpu", on_device=True)
    assert dev.to_dict()["train"]["on_device"] is True and configs.Config.from_dict(dev.to_dict()) == dev
    assert configs.Config.from_dict(cpu.to_dict()) == cpu
    assert "domain" not in cpu.to_dict()["model"]
    angle = configs.get_preset("cpu", domain="angle")
    assert angle.to_dict()["model"]["domain"] == "angle" and configs.Config.from_dict(angle.to_dict()) == angle
    assert builders.bert_model(angle).domain == "angle" and builders.ubert_model(angle).domain == "angle"
    with pytest.raises(ValueError, match="domain must be 'spatial' or 'angle'"):
        configs.get_preset("cpu", domain="dft")
    assert "power" not in cpu.to_dict()["model"]
    pa = configs.get_preset("cpu", power="antenna")
    assert builders.bert_model(pa).power == "antenna" and builders.ubert_model(pa).power == "antenna"
    assert configs.Config.from_dict(pa.to_dict()) == pa
    with pytest.raises(ValueError, match="power must be 'total' or 'antenna'"):
        configs.get_preset("cpu", power="column")


def test_symmetry_augment_keeps_every_utility_and_is_deterministic():
    labels = _labels(32)
    src = train.ArraySource(train.label_arrays(labels), 8, seed=1, transform=train.symmetry_augment)
    b1, b2 = next(src.epoch(2, start=1)), list(src.epoch(2))[1]
    chex.assert_trees_all_equal(b1, b2)
    plain = next(train.ArraySource(train.label_arrays(labels), 8, seed=1).epoch(2, start=1))
    assert np.max(np.abs(b1["H"] - plain["H"])) > 0.1
    for u in jb.TASKS:
        np.testing.assert_allclose(
            jb.utility(u, b1["H"], b1["W_label"], 0.1), jb.utility(u, plain["H"], plain["W_label"], 0.1), rtol=1e-5
        )
    W = jb.mrt(plain["H"], 1.0)  # not just the labels: any beamformer, transformed like the label, keeps U
    Wt = train.symmetry_augment({**plain, "W_label": np.asarray(W)}, np.random.default_rng([1, 2, 1, 1]))
    np.testing.assert_allclose(jb.sum_rate(Wt["H"], Wt["W_label"], 0.1), jb.sum_rate(plain["H"], W, 0.1), rtol=1e-5)
    # the label keeps the solver's phase convention: RZF of the transformed channel = the transformed RZF
    np.testing.assert_allclose(jb.rzf(b1["H"], 1.0, 0.1), b1["W_label"], atol=1e-5)


def test_time_budget_is_a_clock_and_an_ended_run_is_not_trained_again(tmp_path, monkeypatch):
    """pretrain(minutes=...) stops on the clock even where the throughput probe planned far more
    epochs (a machine that got busier after the probe), and a second call loads the best weights instead
    of training on."""
    from jaxbeam.jobs import pretrain, runs

    monkeypatch.setattr(runs, "steps_per_second", lambda *a, **k: 1e5)  # the probe saw an idle machine
    cfg = configs.get_preset("smoke", K=K, N=N, samples_per_power=120, log_every=1000)
    labels = _labels(120)
    workdir = tmp_path / "run"
    params = pretrain.pretrain(cfg, labels, workdir, minutes=0.05, progress=False)  # 3 s; plan: 50,000 epochs
    planned = json.loads((workdir / "config.json").read_text())["epochs_planned"]
    done = json.loads((workdir / "budget_done.json").read_text())
    assert planned == 50_000 and done["train_seconds"] >= 3.0 and done["epochs"] < planned
    files = {p: p.stat().st_mtime_ns for p in workdir.rglob("*") if p.is_file() and p.name != "config.json"}
    again = pretrain.pretrain(cfg, labels, workdir, minutes=0.05, progress=False)
    chex.assert_trees_all_equal(again, params)
    assert {p: p.stat().st_mtime_ns for p in files} == files  # no step, checkpoint or log written


def test_bfloat16_compute_dtype_trains_like_float32_with_float32_state(tmp_path):
    """``ModelConfig.dtype = "bfloat16"`` (``--set dtype=bfloat16``): every preset model computes in bfloat16,
    parameters and Adam state stay float32, and the loss curve follows float32's (smoke preset, 18 steps:
    every epoch's loss within 2 %, and not equal to it: the matmuls really ran in bfloat16)."""
    labels = _labels(120)
    loss_fn = losses.make_loss("sr", supervised=True, lambda1=1.0, lambda2=0.1)
    runs = {}
    for dt in ("float32", "bfloat16"):
        cfg = configs.get_preset("smoke", K=K, N=N, dtype=dt)
        want = None if dt == "float32" else jnp.bfloat16
        assert builders.ubert_model(cfg).dtype == want
        assert all(builders.build_model(kind, cfg, K, N).dtype == want for kind in builders.MODELS)
        model = builders.bert_model(cfg)
        assert model.dtype == want
        src = train.ArraySource(train.label_arrays(labels.split("train")), 16, seed=3)
        runs[dt] = train.fit(
            model,
            loss_fn,
            src,
            epochs=3,
            learning_rate=3e-3,
            val=train.label_arrays(labels.split("val")),
            workdir=tmp_path / dt,
            log_every=2,
            progress=False,
        )
    state = runs["bfloat16"].state
    floats = [x for x in jax.tree.leaves(jax.device_get(state)) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert floats and all(x.dtype == jnp.float32 for x in floats)
    a, b = ([r["loss"] for r in runs[dt].history] for dt in ("float32", "bfloat16"))
    np.testing.assert_allclose(b, a, rtol=0.02)
    assert not np.allclose(b, a, rtol=1e-6, atol=0)


def test_channels_drawn_on_device_are_rayleigh_per_sample_and_train_resume_exactly(tmp_path):
    """``ChannelSource(on_device=True)``: 8 bytes of key per sample cross to the device, the step draws
    CN(0, 1) channels from them (a sample's channel does not depend on its batch, hence on the sharding),
    a step on the keys equals a step on the channels they give, and a killed run resumes to the same
    parameters, also in chunks of steps."""
    src = train.ChannelSource(K, N, [1.0, 2.0], 16, 6, seed=4, on_device=True)
    batch = next(src.epoch(0))
    assert set(batch) == {"H_key", "P"} and batch["H_key"].shape == (16, 2) and batch["H_key"].dtype == np.uint32
    H = np.asarray(src.prepare(batch)["H"])
    chex.assert_shape(H, (16, K, N))
    assert H.dtype == np.complex64
    np.testing.assert_array_equal(np.asarray(src.prepare({k: v[:5] for k, v in batch.items()})["H"]), H[:5])
    big = train.ChannelSource(4, 8, [1.0], 4096, 1, seed=0, on_device=True)
    Hb = np.asarray(big.prepare(next(big.epoch(0)))["H"])
    assert abs(Hb.mean()) < 0.01 and abs(np.mean(np.abs(Hb) ** 2) - 1) < 0.01  # CN(0, 1): 131,072 entries
    assert abs(np.mean(Hb.real**2) - 0.5) < 0.01 and abs(np.mean(Hb.real * Hb.imag)) < 0.01

    loss_fn = losses.make_loss("sr", supervised=False)
    tx = optax.sgd(1e-2)
    on_keys = train.Engine(_model(), loss_fn, tx, prepare=src.prepare)
    on_host = train.Engine(_model(), loss_fn, tx)
    host_batch = {"H": H, "P": batch["P"]}
    s1 = on_keys.init_state(jax.random.PRNGKey(0), batch)
    s2 = on_host.init_state(jax.random.PRNGKey(0), host_batch)
    s1, m1 = on_keys.train_step(s1, on_keys.put_batch(batch))
    s2, m2 = on_host.train_step(s2, on_host.put_batch(host_batch))
    chex.assert_trees_all_close(jax.device_get(s1["params"]), jax.device_get(s2["params"]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(float(m1["loss"]), float(m2["loss"]), rtol=1e-6)

    val = {"H": np.asarray(jb.rayleigh(jax.random.key(9), (24,), K, N)), "P": np.ones(24, np.float32)}

    def run(workdir, **kw):
        return train.fit(_model(), loss_fn, src, epochs=2, learning_rate=3e-3, val=val, workdir=workdir,
                         checkpoint_every=4, log_every=2, progress=False, **kw)  # fmt: skip

    ref = run(tmp_path / "ref")
    assert int(ref.state["step"]) == 12
    assert run(tmp_path / "killed", max_steps=7).state["step"] == 7
    done = run(tmp_path / "killed")
    chex.assert_trees_all_equal(jax.device_get(done.state["params"]), jax.device_get(ref.state["params"]))
    chunked = run(tmp_path / "chunked", steps_per_call=3)
    assert _max_rel_diff(_strip_key(chunked.state["params"]), _strip_key(ref.state["params"])) < 1e-4


def test_resident_data_set_gathers_the_host_batches_and_trains_and_resumes_like_them(tmp_path):
    """``ArraySource(on_device=True)``: batches are int32 indices into the data set placed once on the
    devices; the step gathers exactly the host batch, so the run matches the host-fed one to round-off,
    chunked steps too, and a killed run resumes bit-identically."""
    labels = _labels(120)
    arrays = train.label_arrays(labels.split("train"))
    host = train.ArraySource(arrays, 16, seed=3)
    dev = train.ArraySource(arrays, 16, seed=3, on_device=True)
    assert dev.steps_per_epoch == host.steps_per_epoch == 6
    for hb, db in zip(host.epoch(1, start=2), dev.epoch(1, start=2), strict=True):
        assert set(db) == {"index"} and db["index"].dtype == np.int32 and db["index"].shape == (16,)
        chex.assert_trees_all_equal(jax.device_get(dev.prepare(db, dev.resident)), hb)
    val = {"H": arrays["H"][:2], "P": arrays["P"][:2]}
    chex.assert_trees_all_equal(dev.prepare(val, dev.resident), val)  # a validation batch passes unchanged

    loss_fn = losses.make_loss("sr", supervised=True, lambda1=1.0, lambda2=0.1)
    on_dev = train.Engine(_model(), loss_fn, optax.adam(1e-2), source=dev)
    on_host = train.Engine(_model(), loss_fn, optax.adam(1e-2))
    chex.assert_trees_all_equal(jax.device_get(on_dev.resident), arrays)
    b_dev, b_host = next(dev.epoch(0)), next(host.epoch(0))
    s1 = on_dev.init_state(jax.random.PRNGKey(0), b_dev)
    s2 = on_host.init_state(jax.random.PRNGKey(0), b_host)
    s1, m1 = on_dev.train_step(s1, on_dev.put_batch(b_dev))
    s2, m2 = on_host.train_step(s2, on_host.put_batch(b_host))
    chex.assert_trees_all_close(jax.device_get(s1["params"]), jax.device_get(s2["params"]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(float(m1["loss"]), float(m2["loss"]), rtol=1e-6)

    ref = _fit(tmp_path / "host", labels)
    run = _fit(tmp_path / "dev", labels, source=dev)
    assert [r["step"] for r in run.history] == [6, 12, 18]
    assert _max_rel_diff(_strip_key(run.state["params"]), _strip_key(ref.state["params"])) < 1e-4
    np.testing.assert_allclose([r["loss"] for r in run.history], [r["loss"] for r in ref.history], rtol=1e-4)
    assert _fit(tmp_path / "killed", labels, source=dev, steps_per_call=4, max_steps=9).state["step"] == 9
    done = _fit(tmp_path / "killed", labels, source=dev, steps_per_call=4)
    chunked = _fit(tmp_path / "chunked", labels, source=dev, steps_per_call=4)
    chex.assert_trees_all_equal(jax.device_get(done.state["params"]), jax.device_get(chunked.state["params"]))
    assert _max_rel_diff(_strip_key(chunked.state["params"]), _strip_key(run.state["params"])) < 1e-4

    with pytest.raises(ValueError, match="on_device=True takes transform=None or symmetry_augment"):
        train.ArraySource(arrays, 16, on_device=True, transform=lambda b, rng: b)
    with pytest.raises(ValueError, match="resident data needs a prepare"):
        train.Engine(_model(), loss_fn, optax.adam(1e-2), resident=arrays)
    with pytest.raises(ValueError, match="give source, or prepare / resident, not both"):
        train.Engine(_model(), loss_fn, optax.adam(1e-2), source=dev, prepare=dev.prepare)


def test_symmetry_augment_on_device_keeps_every_utility_per_sample_and_resumes_exactly(tmp_path):
    """The device augmentation of a resident data set: per-sample keys (8 bytes per sample), the same
    invariances as the host's (every utility kept, RZF's phase convention kept), a sample's transform
    independent of its batch, deterministic, and a killed augmented run resumes bit-identically."""
    labels = _labels(120)
    arrays = train.label_arrays(labels.split("train"))
    src = train.ArraySource(arrays, 16, seed=1, transform=train.symmetry_augment, on_device=True)
    batch = next(src.epoch(2, start=1))
    assert set(batch) == {"index", "aug_key"} and batch["aug_key"].shape == (16, 2)
    assert batch["aug_key"].dtype == np.uint32
    chex.assert_trees_all_equal(batch, list(src.epoch(2))[1])
    aug = jax.device_get(src.prepare(batch, src.resident))
    plain = {k: v[batch["index"]] for k, v in arrays.items()}
    chex.assert_shape(aug["H"], plain["H"].shape)
    assert aug["H"].dtype == np.complex64
    assert np.max(np.abs(aug["H"] - plain["H"])) > 0.1
    for u in jb.TASKS:
        np.testing.assert_allclose(
            jb.utility(u, aug["H"], aug["W_label"], 0.1), jb.utility(u, plain["H"], plain["W_label"], 0.1), rtol=1e-5
        )
    np.testing.assert_allclose(jb.rzf(aug["H"], 1.0, 0.1), aug["W_label"], atol=1e-5)
    half = jax.device_get(src.prepare({k: v[5:9] for k, v in batch.items()}, src.resident))
    np.testing.assert_array_equal(half["H"], aug["H"][5:9])

    ref = _fit(tmp_path / "ref", labels, source=src)
    assert _fit(tmp_path / "killed", labels, source=src, max_steps=7).state["step"] == 7
    done = _fit(tmp_path / "killed", labels, source=src)
    chex.assert_trees_all_equal(jax.device_get(done.state["params"]), jax.device_get(ref.state["params"]))
    assert done.best_metric == ref.best_metric
