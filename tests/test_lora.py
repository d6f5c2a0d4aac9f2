"""LoRA and MoE-LoRA adapters (papers 003 eqs. 22-24, 004): start equal to the base model, eq. 23 against
the merged kernel, eq. 24 against plain LoRA with one expert chosen, training only the adapters with the
engine, storage apart from the base, and the errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam import configs, train
from jaxbeam.jobs import adapters as store
from jaxbeam.jobs.builders import bert_model
from jaxbeam.models import lora
from jaxbeam.train import losses

K, N = 3, 4


def _bert(features=16):
    return jb.models.BERT(num_antennas=N, features=features, num_layers=2, num_heads=2)


def _inputs(B=5, seed=0):
    return jb.rayleigh(jax.random.key(seed), (B,), K, N), jnp.ones((B,), jnp.float32)


def _perturbed(adapters, seed=3, size=0.1):
    leaves, tree = jax.tree.flatten(adapters)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(
        tree, [x + size * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    )


def test_adapters_start_at_the_base_model_and_merge_into_it():
    m = _bert()
    H, P = _inputs()
    params = m.init(jax.random.key(1), H, P)["params"]
    cfg = lora.LoRAConfig(rank=2, alpha=4.0, targets=(lora.ATTENTION, lora.FFN))
    ad = lora.init(jax.random.key(2), params, cfg)
    names = ("mha/query", "mha/key", "mha/value", "mha/out", "ffn_in", "ffn_out")
    assert sorted(ad["layers"]) == sorted(f"encoder/block_{i}/{n}" for i in (0, 1) for n in names)
    chex.assert_shape(ad["layers"]["encoder/block_0/ffn_in"]["A"], (2, 16))
    chex.assert_shape(ad["layers"]["encoder/block_0/ffn_in"]["B"], (64, 2))
    W0 = m.apply({"params": params}, H, P)
    np.testing.assert_array_equal(lora.apply(m, params, ad, cfg, H, P), W0)  # B = 0: the pre-trained model
    ad = _perturbed(ad)
    W = lora.apply(m, params, ad, cfg, H, P)
    assert float(jnp.max(jnp.abs(W - W0))) > 1e-2
    merged = lora.merge(params, ad, cfg)
    np.testing.assert_allclose(m.apply({"params": merged}, H, P), W, atol=2e-6)
    # eq. 22 on one kernel, by hand: W0 + alpha / r * (B A)^T
    a = ad["layers"]["encoder/block_1/ffn_out"]
    want = (
        np.asarray(params["encoder"]["block_1"]["ffn_out"]["kernel"])
        + 2.0 * (np.asarray(a["B"]) @ np.asarray(a["A"])).T
    )
    np.testing.assert_allclose(merged["encoder"]["block_1"]["ffn_out"]["kernel"], want, rtol=1e-5, atol=1e-6)
    # the attention output kernel (C, D, F) is adapted as the (C D) x F matrix
    chex.assert_shape(ad["layers"]["encoder/block_0/mha/out"]["A"], (2, 16))
    # only the targets: the FFN alone leaves attention as it was
    ffn = lora.LoRAConfig(rank=2, targets=(lora.FFN,))
    assert all("ffn" in p for p in lora.init(jax.random.key(0), params, ffn)["layers"])


def test_moe_lora_is_a_per_task_mixture_of_loras():
    """Eq. 24: with the gate of task t saturated on expert e, the MoE output is plain LoRA with expert e's
    matrices, per sample; mixed tasks in one batch each get their own mixture; UBERT passes its task on."""
    m = _bert()
    H, P = _inputs(B=4)
    params = m.init(jax.random.key(1), H, P)["params"]
    moe = lora.LoRAConfig(rank=2, experts=3)
    ad = _perturbed(lora.init(jax.random.key(2), params, moe))
    np.testing.assert_array_equal(
        lora.apply(m, params, lora.init(jax.random.key(2), params, moe), moe, H, P, task=jnp.zeros(4, jnp.int32)),
        m.apply({"params": params}, H, P),
    )
    gate = {p: jnp.full((3, 3), -1e4).at[0, 2].set(0.0).at[1, 0].set(0.0).at[2, 1].set(0.0) for p in ad["gate"]}
    ad = {"layers": ad["layers"], "gate": gate}
    task = jnp.array([0, 1, 2, 0])
    W = lora.apply(m, params, ad, moe, H, P, task=task)
    plain = lora.LoRAConfig(rank=2)
    for t, e in ((0, 2), (1, 0), (2, 1)):
        one = {"layers": jax.tree.map(lambda x, e=e: x[e], ad["layers"]), "gate": {}}
        We = lora.apply(m, params, one, plain, H, P)
        rows = np.flatnonzero(np.asarray(task) == t)
        np.testing.assert_allclose(W[rows], We[rows], atol=1e-6)
    w = lora.expert_weights(ad, task)["encoder/block_0/mha/query"]
    np.testing.assert_allclose(w, jax.nn.one_hot([2, 0, 1, 2], 3), atol=1e-6)
    with pytest.raises(ValueError, match="MoE-LoRA needs the task ids"):
        lora.apply(m, params, ad, moe, H, P)
    with pytest.raises(ValueError, match="merge the weights of one task"):
        lora.merge(params, ad, moe)
    for t in (0, 1, 2):  # one task's mixture folded into the kernels: that task's outputs
        rows = np.flatnonzero(np.asarray(task) == t)
        Wt = m.apply({"params": lora.merge(params, ad, moe, task=t)}, H, P)
        np.testing.assert_allclose(Wt[rows], W[rows], atol=2e-6)
    # UBERT: every Dense of the model is reachable, and a fresh MoE-LoRA leaves it unchanged
    ub = jb.models.UBERT(features=16, num_layers=1, num_heads=2)
    tk = jnp.array([0, 1, 2, 1])
    up = ub.init(jax.random.key(4), H, P, tk)["params"]
    uad = lora.init(jax.random.key(5), up, moe)
    assert uad["layers"]
    np.testing.assert_array_equal(lora.apply(ub, up, uad, moe, H, P, tk, task=tk), ub.apply({"params": up}, H, P, tk))


def test_training_moves_only_the_adapters_and_adam_holds_state_for_them_alone():
    m = _bert()
    arrays = {"H": np.asarray(_inputs(B=64, seed=5)[0]), "P": np.ones(64, np.float32)}
    base = m.init(jax.random.key(1), arrays["H"][:1], arrays["P"][:1])["params"]
    for cfg, task in ((lora.LoRAConfig(rank=2), None), (lora.LoRAConfig(rank=2, experts=2), 0)):
        ad = lora.init(jax.random.key(2), base, cfg)
        params = lora.combine(base, ad)
        res = train.fit(
            m,
            losses.make_loss("sr", supervised=False),
            train.ArraySource(arrays, 16, seed=0),
            epochs=3,
            learning_rate=1e-2,
            init_params=params,
            trainable_labels=lora.trainable(params),
            forward=lora.forward(cfg, task=task),
            progress=False,
        )
        final = jax.device_get(res.state["params"])
        chex.assert_trees_all_equal(final["base"], jax.device_get(base))
        moved = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), final["lora"], jax.device_get(ad))
        assert max(jax.tree.leaves(moved)) > 1e-3
        adam = [x for x in jax.tree.leaves(res.state["opt_state"]) if np.ndim(x) > 0]
        assert sum(x.size for x in adam) == 2 * lora.count(ad)  # two moments of the adapters, none of the base


def test_rank_8_on_the_cpu_bert_trains_under_five_percent_of_its_parameters():
    """The default targets (attention Q/K/V/O) at rank 8: under 5 % of the cpu BERT; two experts: 2x LoRA."""
    cfg = configs.get_preset("cpu")
    m = bert_model(cfg)
    H, P = jb.rayleigh(jax.random.key(0), (1,), 6, 12), jnp.ones((1,))
    params = jax.eval_shape(lambda: m.init(jax.random.key(0), H, P))["params"]
    total = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))

    def share(c):
        return lora.count(jax.eval_shape(lambda: lora.init(jax.random.key(0), params, c))) / total

    F, L = cfg.model.features, cfg.model.num_layers
    assert share(lora.LoRAConfig(rank=8)) == pytest.approx(L * 4 * 8 * 2 * F / total)
    assert share(lora.LoRAConfig()) < 0.05
    moe = share(lora.LoRAConfig(rank=8, experts=2))
    assert moe == pytest.approx(2 * share(lora.LoRAConfig(rank=8)) + L * 4 * 3 * 2 / total)  # + the gates


def test_adapters_are_stored_apart_and_refused_for_another_base(tmp_path):
    m = _bert()
    H, P = _inputs()
    params = m.init(jax.random.key(1), H, P)["params"]
    cfg = lora.LoRAConfig(rank=2, experts=2)
    ad = _perturbed(lora.init(jax.random.key(2), params, cfg))
    store.save_adapters(tmp_path / "a", ad, cfg, params)
    got, got_cfg = store.load_adapters(tmp_path / "a", params)
    assert got_cfg == cfg
    chex.assert_trees_all_equal(got, jax.device_get(ad))
    other = m.init(jax.random.key(9), H, P)["params"]
    with pytest.raises(ValueError, match="trained on another base model"):
        store.load_adapters(tmp_path / "a", other)
    with pytest.raises(ValueError, match="holds no readable adapters"):
        store.load_adapters(tmp_path / "missing", params)
    f = tmp_path / "a" / store.ADAPTER_FILE
    data = dict(np.load(f))
    first = sorted(data)[0]
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "a").iterdir()}
    store.save_adapters(tmp_path / "a", ad, cfg, params)  # the same adapters again: nothing is rewritten
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "a").iterdir()} == stamps
    data[first] = data[first] + 1.0
    np.savez(f, **data)
    with pytest.raises(ValueError, match="fails its digest"):
        store.load_adapters(tmp_path / "a", params)
    store.save_adapters(tmp_path / "a", ad, cfg, params)  # a corrupted copy is written again
    chex.assert_trees_all_equal(store.load_adapters(tmp_path / "a", params)[0], jax.device_get(ad))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rank": 0}, "rank must be a positive int"),
        ({"rank": 2.5}, "rank must be a positive int"),
        ({"alpha": 0.0}, "alpha must be > 0"),
        ({"targets": "ffn"}, "targets must be a non-empty tuple"),
        ({"targets": ("ffn(",)}, "is not a regular expression"),
        ({"experts": -1}, "experts must be an int >= 0"),
    ],
)
def test_bad_configs_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lora.LoRAConfig(**kwargs)


def test_bad_targets_and_ranks_name_the_layer():
    m = _bert()
    H, P = _inputs()
    params = m.init(jax.random.key(1), H, P)["params"]
    with pytest.raises(ValueError, match="matches no Dense kernel; the model's kernels"):
        lora.init(jax.random.key(0), params, lora.LoRAConfig(rank=2, targets=("conv",)))
    with pytest.raises(ValueError, match="rank 17 exceeds the width of encoder/block_0/ffn_in"):
        lora.init(jax.random.key(0), params, lora.LoRAConfig(rank=17, targets=(lora.FFN,)))
    other = jb.models.BERT(num_antennas=N, features=32, num_layers=2, num_heads=2)
    p2 = other.init(jax.random.key(1), H, P)["params"]
    with pytest.raises(ValueError, match="do not fit this model"):
        lora.check(p2, lora.init(jax.random.key(0), params, lora.LoRAConfig(rank=2)), lora.LoRAConfig(rank=2))
    with pytest.raises(ValueError, match="task must be in"):
        lora.forward(lora.LoRAConfig(rank=2, experts=2), task=3)
