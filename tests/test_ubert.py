"""UBERT (eqs. 19-28), its multi-task loss (eqs. 29-30) and task sampling (Algorithm 1)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam.models.ubert import cosine_positional_encoding
from jaxbeam.train.losses_multitask import make_multitask_loss, multitask_label_loss, multitask_loss
from jaxbeam.train.task_sampling import random_task_batch, uniform_task_batch, uniform_task_epoch

F, L, C = 16, 1, 2


def _power(W):
    return np.asarray(jnp.sum(jnp.abs(W) ** 2, axis=(-2, -1)))


@pytest.fixture(scope="module", params=["element", "structured", "balanced"])
def model_and_vars(request):
    model = jb.models.UBERT(features=F, num_layers=L, num_heads=C, head=request.param)
    H = jb.rayleigh(jax.random.key(0), (2,), 6, 12)
    v = jax.jit(model.init)(jax.random.key(1), H, 1.0, jnp.array([0, 1]))
    if model.head != "element":  # the init starts at RZF for every task; make the head's kernels matter
        params = dict(v["params"])
        for i, name in enumerate(("structure", "total_power", "balance_gate")[: 2 + (model.head == "balanced")]):
            k = params[name]["kernel"]
            params[name] = {**params[name], "kernel": 0.5 * jax.random.normal(jax.random.key(10 + i), k.shape)}
        v = {"params": params}
    return model, v, jax.jit(model.apply)


# the two padding-equivalence tests below compile a model per N; CI runs them for the structured and balanced
# heads (the element head's padding is covered by test_padded_users_get_zero_beams_and_do_not_change_real_users)
HEADS_BUT_ELEMENT_IN_CI = [pytest.param("element", marks=pytest.mark.slow), "structured", "balanced"]


# ----------------------------------------------------------------------------------------------- model


def test_shapes_dtypes_and_parameters_do_not_depend_on_K_or_N(model_and_vars):
    model, v, fwd = model_and_vars
    if model.head == "element":
        assert set(v["params"]) == {"aeb", "task", "encoder", "head"}
        chex.assert_shape(v["params"]["head"]["kernel"], (F, 2))  # eq. 28: [w_Urel, w_Uimg]
    else:
        gate = {"balance_gate"} if model.head == "balanced" else set()
        assert set(v["params"]) == {"aeb", "task", "encoder", "structure", "total_power"} | gate
        chex.assert_shape(v["params"]["structure"]["kernel"], (F, 2))  # (log lambda_k, power logit) per user
        chex.assert_shape(v["params"]["total_power"]["kernel"], (F, 1))
    chex.assert_shape(v["params"]["aeb"]["embedding"]["kernel"], (2, F))  # eq. 20: W_embedding in R^{2 x F}
    chex.assert_shape(v["params"]["aeb"]["ext"]["kernel"], (F, F))  # eq. 24: W_ext
    chex.assert_shape(v["params"]["task"]["embedding"], (3, F))  # eq. 25: one token per task
    other = jax.eval_shape(model.init, jax.random.key(1), jnp.zeros((1, 9, 17), jnp.complex64), 1.0, jnp.array([2]))
    chex.assert_trees_all_equal_shapes(v, other)
    W = fwd(v, jb.rayleigh(jax.random.key(2), (3,), 6, 12), 1.0, jnp.array([0, 1, 2]))
    chex.assert_shape(W, (3, 6, 12))
    assert W.dtype == jnp.complex64


# N = 11, 14, 17 (K = 6) run in the mixed-N test, (6, 12) and (7, 12) elsewhere: all of N 11..17, K 5..9 are covered.
@pytest.mark.parametrize("K,N", [(5, 12), (7, 13), (8, 15), (9, 16)])
def test_any_K_and_N_with_the_same_parameters(model_and_vars, K, N):
    model, v, fwd = model_and_vars
    P = jnp.array([1.0, 2.0, 3.0])
    W = fwd(v, jb.rayleigh(jax.random.key(K * N), (3,), K, N), P, jnp.array([0, 1, 2]))
    chex.assert_shape(W, (3, K, N))
    chex.assert_tree_all_finite(W)
    assert np.all(_power(W) <= np.asarray(P) * (1 + 1e-5))


def test_power_constraint_per_sample(model_and_vars):
    model, v, fwd = model_and_vars
    H = jb.rayleigh(jax.random.key(3), (4,), 6, 12)
    P = jnp.array([0.1, 1.0, 2.0, 3.0])
    W = fwd(v, H, P, jnp.array([0, 1, 2, 0]))
    assert np.all(_power(W) <= np.asarray(P) * (1 + 1e-5))


def test_the_task_token_changes_the_beams_and_a_scalar_task_broadcasts(model_and_vars):
    model, v, fwd = model_and_vars
    H = jb.rayleigh(jax.random.key(4), (2,), 6, 12)
    Ws = [fwd(v, H, 1.0, t) for t in range(3)]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.allclose(Ws[a], Ws[b], atol=1e-4)
    chex.assert_trees_all_close(Ws[1], fwd(v, H, 1.0, jnp.array([1, 1])), atol=1e-6)


def test_padded_users_get_zero_beams_and_do_not_change_real_users(model_and_vars):
    model, v, fwd = model_and_vars
    H = jb.rayleigh(jax.random.key(5), (2,), 5, 12)
    task = jnp.array([0, 2])
    W = fwd(v, H, 1.0, task)
    garbage = 10 * jb.rayleigh(jax.random.key(6), (2,), 2, 12)
    Hp = jnp.concatenate([H[:, :2], garbage[:, :1], H[:, 2:], garbage[:, 1:]], axis=1)  # pads inside and at end
    mask = jnp.array([True, True, False, True, True, True, False])
    Wp = fwd(v, Hp, 1.0, task, mask=jnp.broadcast_to(mask, (2, 7)))
    chex.assert_trees_all_close(Wp[:, mask], W, atol=2e-5)
    assert np.all(np.asarray(Wp[:, ~mask]) == 0)


@pytest.mark.parametrize("model_and_vars", HEADS_BUT_ELEMENT_IN_CI, indirect=True)
def test_mixed_N_batch_equals_per_N_unpadded_runs(model_and_vars):
    model, v, fwd = model_and_vars
    Ns, K, Nmax = (11, 14, 17), 6, 17
    task = jnp.array([0, 1, 2])
    P = jnp.array([1.0, 2.0, 3.0])
    Hs = [jb.rayleigh(jax.random.key(10 + i), (1,), K, n) for i, n in enumerate(Ns)]
    garbage = 5 * jb.rayleigh(jax.random.key(20), (1,), K, Nmax)[0]
    Hp = jnp.stack([jnp.concatenate([h[0], garbage[:, n:]], axis=-1) for h, n in zip(Hs, Ns, strict=True)])
    amask = jnp.arange(Nmax)[None, :] < jnp.array(Ns)[:, None]
    Wp = fwd(v, Hp, P, task, antenna_mask=amask)
    for i, n in enumerate(Ns):
        W = fwd(v, Hs[i], P[i : i + 1], task[i : i + 1])
        chex.assert_trees_all_close(Wp[i, :, :n], W[0], atol=2e-5)
        assert np.all(np.asarray(Wp[i, :, n:]) == 0)


@pytest.mark.parametrize("model_and_vars", HEADS_BUT_ELEMENT_IN_CI, indirect=True)
def test_user_and_antenna_padding_together(model_and_vars):
    model, v, fwd = model_and_vars
    H = jb.rayleigh(jax.random.key(7), (1,), 5, 13)
    W = fwd(v, H, 2.0, jnp.array([1]))
    Hp = jnp.pad(H, ((0, 0), (0, 2), (0, 3)), constant_values=3.0)
    mask = jnp.arange(7)[None] < 5
    amask = jnp.arange(16)[None] < 13
    Wp = fwd(v, Hp, 2.0, jnp.array([1]), mask=mask, antenna_mask=amask)
    chex.assert_trees_all_close(Wp[:, :5, :13], W, atol=2e-5)
    assert np.all(np.asarray(Wp[:, 5:]) == 0) and np.all(np.asarray(Wp[:, :, 13:]) == 0)


def test_angle_domain_tokens_with_mixed_N_equal_per_N_unpadded_runs(model_and_vars):
    """``domain="angle"``: each sample's tokens are its own N-point DFT (paper 003 eq. 18), so a padded batch
    still equals the unpadded runs; the element head's beams come back from the angle domain."""
    model, v, _ = model_and_vars
    angle = jax.jit(model.clone(domain="angle").apply)
    Ns, K, Nmax = (5, 8), 4, 8
    task, P = jnp.array([0, 2]), jnp.array([1.0, 2.0])
    Hs = [jb.rayleigh(jax.random.key(30 + i), (1,), K, n) for i, n in enumerate(Ns)]
    Hp = jnp.concatenate(
        [jnp.pad(h, ((0, 0), (0, 0), (0, Nmax - n)), constant_values=2.0) for h, n in zip(Hs, Ns, strict=True)]
    )
    amask = jnp.arange(Nmax)[None, :] < jnp.array(Ns)[:, None]
    Wp = angle(v, Hp, P, task, antenna_mask=amask)
    for i, n in enumerate(Ns):
        W = angle(v, Hs[i], P[i : i + 1], task[i : i + 1])
        chex.assert_trees_all_close(Wp[i, :, :n], W[0], atol=2e-5)
        assert np.all(np.asarray(Wp[i, :, n:]) == 0)
        assert _power(W)[0] <= P[i] * (1 + 1e-5)
        if model.head == "element":  # the same parameters on the DFT channel, beams mapped back
            ref = jb.spatial_domain(model.apply(v, jb.angle_domain(Hs[i]), P[i : i + 1], task[i : i + 1]))
            chex.assert_trees_all_close(W, ref, atol=2e-5)


def test_permutation_equivariance_over_users(model_and_vars):
    model, v, fwd = model_and_vars
    H = jb.rayleigh(jax.random.key(8), (2,), 7, 12)
    perm = jnp.array([3, 0, 6, 1, 5, 2, 4])
    W = fwd(v, H, 1.0, jnp.array([0, 2]))
    Wperm = fwd(v, H[:, perm], 1.0, jnp.array([0, 2]))
    chex.assert_trees_all_close(Wperm, W[:, perm], atol=2e-5)


def test_gradients_through_the_masked_model_are_finite(model_and_vars):
    model, v, fwd = model_and_vars
    H = jb.rayleigh(jax.random.key(9), (3,), 6, 12)
    task = jnp.array([0, 1, 2])
    mask = jnp.array([[True] * 6, [True] * 5 + [False], [True] * 4 + [False] * 2])
    amask = jnp.array([[True] * 12, [True] * 11 + [False], [True] * 12])
    H = jnp.where(mask[..., None] & amask[:, None, :], H, 0)
    W_label = jb.rzf(H, 1.0, 0.1)

    def loss(params):
        W = model.apply({"params": params}, H, 1.0, task, mask=mask, antenna_mask=amask)
        return jnp.mean(multitask_label_loss(W, W_label, mask, amask))

    W = fwd(v, H, 1.0, task, mask=mask, antenna_mask=amask)
    assert np.all(np.asarray(W[1, 5]) == 0) and np.all(np.asarray(W[1, :, 11]) == 0)
    value, grads = jax.jit(jax.value_and_grad(loss))(v["params"])
    chex.assert_tree_all_finite((value, grads))
    assert float(jnp.sum(jnp.abs(grads["task"]["embedding"]))) > 0


def test_structured_head_starts_at_rzf_and_follows_lambda_and_p():
    model = jb.models.UBERT(features=F, num_layers=L, num_heads=C, head="structured")
    H = jb.rayleigh(jax.random.key(21), (3,), 5, 9)
    P = jnp.array([0.5, 1.0, 3.0])
    mask = jnp.array([[True] * 5, [True] * 4 + [False], [True, False, True, True, True]])
    v = model.init(jax.random.key(22), H, P, jnp.array([0, 1, 2]))
    # with zero kernels only the biases act: lambda_k = P / (K_active 0.1), equal powers, 95 % of P, i.e. RZF
    zero = jax.tree.map(jnp.zeros_like, v["params"]["structure"]["kernel"])
    params = {**v["params"], "structure": {**v["params"]["structure"], "kernel": zero}}
    params["total_power"] = {**params["total_power"], "kernel": jnp.zeros_like(params["total_power"]["kernel"])}
    W = model.apply({"params": params}, H, P, jnp.array([0, 1, 2]), mask=mask)
    want = np.sqrt(0.95) * np.asarray(jb.rzf(H, P, 0.1, mask=mask))
    np.testing.assert_allclose(np.asarray(W), want, atol=2e-5)
    # per-user power logits redistribute the power among the users; the total stays 0.95 P
    kernel = np.zeros((F, 2), np.float32)
    kernel[:, 1] = np.random.default_rng(0).standard_normal(F)  # token features differ per user
    params["structure"]["kernel"] = jnp.asarray(kernel)
    W2 = model.apply({"params": params}, H, P, jnp.array([0, 1, 2]), mask=mask)
    np.testing.assert_allclose(_power(W2), 0.95 * np.asarray(P), rtol=1e-5)
    assert not np.allclose(np.asarray(jnp.sum(jnp.abs(W2) ** 2, -1)), np.asarray(jnp.sum(jnp.abs(W) ** 2, -1)))
    with pytest.raises(ValueError, match="head must be one of"):
        jb.models.UBERT(features=F, num_layers=L, num_heads=C, head="linear").init(jax.random.key(0), H, 1.0, 0)


def test_balanced_head_gates_between_predicted_and_maxmin_powers():
    H = jb.rayleigh(jax.random.key(23), (3,), 5, 9)
    P = jnp.array([0.5, 1.0, 3.0])
    task = jnp.array([0, 1, 2])
    mask = jnp.array([[True] * 5, [True] * 4 + [False], [True, False, True, True, True]])
    model = jb.models.UBERT(features=F, num_layers=L, num_heads=C, head="balanced", balance_iters=50)
    v = model.init(jax.random.key(24), H, P, task)
    params = jax.tree.map(lambda x: x, v["params"])
    for name in ("structure", "total_power", "balance_gate"):  # only the biases act
        params[name] = {**params[name], "kernel": jnp.zeros_like(params[name]["kernel"])}
    rzf = jb.rzf(H, P, 0.1, mask=mask)
    apply = jax.jit(lambda p: model.apply({"params": p}, H, P, task, mask=mask))  # op by op: ~500 compiles
    for bias, want in (  # gate closed: the structured head (RZF); open: RZF directions, max-min powers
        (-30.0, np.sqrt(0.95) * np.asarray(rzf)),
        (30.0, np.asarray(jb.maxmin_power(H, rzf, 0.95 * P, 0.1, mask=mask, num_iter=50))),
    ):
        params["balance_gate"] = {**params["balance_gate"], "bias": jnp.full((1,), bias)}
        W = apply(params)
        np.testing.assert_allclose(np.asarray(W), want, atol=3e-5)
    sinr = np.asarray(jb.sinr(H, W, 0.1, mask=mask))
    for b in range(3):  # open gate: every present user at the same SINR
        s = sinr[b][np.asarray(mask[b])]
        np.testing.assert_allclose(s, s.mean(), rtol=1e-3)
    # the gate is learnable: the MR loss has a gradient on it
    grads = jax.jit(jax.grad(lambda p: -jnp.mean(jb.min_rate(H, apply(p), 0.1, mask=mask))))(
        {**params, "balance_gate": {**params["balance_gate"], "bias": jnp.zeros((1,))}}
    )
    chex.assert_tree_all_finite(grads)
    assert float(jnp.abs(grads["balance_gate"]["bias"][0])) > 0


def test_ablations_run_and_drop_their_parameters():
    H = jb.rayleigh(jax.random.key(11), (2,), 5, 11)
    variant = jb.models.UBERT(features=F, num_layers=1, num_heads=C, aeb_residual=False, head_hidden=8, head="element")
    v = jax.eval_shape(variant.init, jax.random.key(0), H, 1.0, jnp.array([0, 1]))
    chex.assert_shape(v["params"]["head_hidden"]["kernel"], (F, 8))
    chex.assert_shape(v["params"]["head"]["kernel"], (8, 2))
    no_task = jb.models.UBERT(features=F, num_layers=1, num_heads=C, task_embedding=False)
    v = jax.jit(no_task.init)(jax.random.key(0), H, 1.0, jnp.array([0, 1]))
    assert "task" not in v["params"]
    fwd = jax.jit(no_task.apply)
    chex.assert_trees_all_close(fwd(v, H, 1.0, 0), fwd(v, H, 1.0, 2))
    no_pos = jb.models.UBERT(features=F, num_layers=1, num_heads=C, positional_encoding=False)
    v = jax.jit(no_pos.init)(jax.random.key(0), H, 1.0, jnp.array([0, 1]))
    fwd = jax.jit(no_pos.apply)
    W = fwd(v, H, 1.0, jnp.array([0, 1]))
    # without positions, the AEB is equivariant over antennas (the ablation's known weakness)
    perm = jnp.array([4, 2, 0, 1, 3, 10, 9, 8, 7, 6, 5])
    chex.assert_trees_all_close(fwd(v, H[..., perm], 1.0, jnp.array([0, 1])), W[..., perm], atol=2e-5)


def test_bfloat16_computation_returns_complex64_beams_within_budget():
    model = jb.models.UBERT(features=F, num_layers=1, num_heads=C, dtype=jnp.bfloat16)
    H = jb.rayleigh(jax.random.key(21), (2,), 5, 11)
    v = jax.jit(model.init)(jax.random.key(0), H, 1.0, jnp.array([0, 2]))
    W = jax.jit(model.apply)(v, H, jnp.array([1.0, 3.0]), jnp.array([0, 2]), antenna_mask=jnp.arange(11)[None] < 10)
    assert W.dtype == jnp.complex64
    chex.assert_tree_all_finite(W)
    assert np.all(_power(W) <= np.array([1.0, 3.0]) * (1 + 1e-5))


def test_positional_encoding_index_convention():
    pe = np.asarray(cosine_positional_encoding(17, 8))
    np.testing.assert_allclose(pe[:11], np.asarray(cosine_positional_encoding(11, 8)))  # no N dependence
    i = np.arange(1, 18)  # 1-based antenna index of eq. 21
    np.testing.assert_allclose(pe[:, 0], np.cos(i), atol=1e-6)
    np.testing.assert_allclose(pe[:, 1], np.sin(i), atol=1e-6)
    np.testing.assert_allclose(pe[:, 2], np.cos(i / 10000 ** (2 / 8)), atol=1e-6)
    np.testing.assert_allclose(pe[:, 7], np.sin(i / 10000 ** (6 / 8)), atol=1e-6)


def test_bad_arguments_raise(model_and_vars):
    model, v, fwd = model_and_vars
    H = jb.rayleigh(jax.random.key(12), (2,), 5, 11)
    with pytest.raises(ValueError, match="task"):
        model.apply(v, H, 1.0, jnp.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="task"):
        model.apply(v, H, 1.0, jnp.array([0, 3]))
    with pytest.raises(ValueError, match="antenna_mask"):
        model.apply(v, H, 1.0, jnp.array([0, 1]), antenna_mask=jnp.ones((2, 12), bool))
    with pytest.raises(ValueError, match="H"):
        model.apply(v, H.real, 1.0, jnp.array([0, 1]))


# ------------------------------------------------------------------------------------- loss eq. 29-30


def test_out_of_range_task_ids_are_rejected_or_clamped_never_nan(model_and_vars):
    """Defect 4: task = 5 under jit gave NaN beams (the embedding lookup of an out-of-range id)."""
    model, v, fwd = model_and_vars
    H = jb.rayleigh(jax.random.key(12), (4,), 5, 11)
    W = np.asarray(fwd(v, H, 1.0, jnp.array([5, -3, 3, 1])))  # traced ids: clamped into [0, 3)
    assert np.all(np.isfinite(W))
    np.testing.assert_allclose(W, fwd(v, H, 1.0, jnp.array([2, 0, 2, 1])), rtol=1e-6, atol=1e-7)
    for bad in (5, -1, jnp.array([0, 1, 2, 3])):  # concrete ids: ValueError naming task
        with pytest.raises(ValueError, match=r"task must be integer task ids in \[0, 3\)"):
            model.apply(v, H, 1.0, bad)
    with pytest.raises(TypeError, match="task"):
        model.apply(v, H, 1.0, 1.0)
    # multi-task loss: concrete ids checked, traced ones clamped (no sample silently dropped, no NaN)
    W_label = jb.rzf(H, 1.0, 0.1)
    with pytest.raises(ValueError, match="task"):
        multitask_loss(W, W_label, jnp.array([0, 1, 2, 3]))
    loss = jax.jit(multitask_loss)(W, W_label, jnp.array([0, 1, 2, 9]))
    np.testing.assert_allclose(loss, multitask_loss(W, W_label, jnp.array([0, 1, 2, 2])), rtol=1e-6)
    loss_fn = jax.jit(make_multitask_loss())
    per, metrics = loss_fn(W, {"H": H, "W_label": W_label, "task": jnp.array([0, 1, 2, 7])})
    assert np.all(np.isfinite(np.asarray(metrics["utility"])))


def test_traced_zero_power_gives_zero_beams(model_and_vars):
    model, v, fwd = model_and_vars
    H = jb.rayleigh(jax.random.key(13), (4,), 5, 11)
    W = np.asarray(fwd(v, H, jnp.array([1.0, 0.0, -1.0, jnp.nan]), jnp.array([0, 1, 2, 0])))
    assert np.all(np.isfinite(W))
    np.testing.assert_array_equal(W[1:], 0)
    assert 0 < _power(W[:1])[0] <= 1 + 1e-5
    with pytest.raises(ValueError, match="P must be finite > 0"):
        model.apply(v, H, 0.0, 0)


def test_multitask_loss_is_zero_exactly_at_the_label():
    key = jax.random.key(13)
    W_label = jb.rayleigh(key, (4,), 6, 12) * jnp.array([0.1, 0.5, 1.0, 3.0])[:, None, None]  # any energy
    np.testing.assert_allclose(multitask_label_loss(W_label, W_label), 0.0, atol=1e-7)
    for W_out in (
        1.01 * W_label,  # same direction, other power: the literal eq. 30 would not see this
        W_label * jnp.exp(0.1j),
        W_label + 1e-2 * jb.rayleigh(jax.random.key(14), (4,), 6, 12),
        jnp.zeros_like(W_label),
        -W_label,
    ):
        loss = np.asarray(multitask_label_loss(W_out, W_label))
        assert np.all(loss > 0) and np.all(loss <= 2 + 1e-6)
    np.testing.assert_allclose(multitask_label_loss(-W_label, W_label), 2.0, rtol=1e-6)


def test_multitask_loss_matches_eq30_bracket_at_energy_K_and_paper_scale():
    K, N = 6, 12
    a = jb.rayleigh(jax.random.key(15), (3,), K, N)
    b = jb.rayleigh(jax.random.key(16), (3,), K, N)
    a = a * jnp.sqrt(K / jnp.sum(jnp.abs(a) ** 2, axis=(-2, -1)))[:, None, None]
    b = b * jnp.sqrt(K / jnp.sum(jnp.abs(b) ** 2, axis=(-2, -1)))[:, None, None]
    full = lambda W: jnp.concatenate([W.real, W.imag], axis=-1)  # noqa: E731  (W^full of eq. 30)
    trace = jnp.einsum("bkn,bkn->b", full(a), full(b))  # Tr(W_out^full W_cvx^full^T)
    np.testing.assert_allclose(multitask_label_loss(a, b), 1 - trace / K, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        multitask_label_loss(a, b, paper_scale=True), (1 - trace / K) / (K * N), rtol=1e-5, atol=1e-7
    )


def test_multitask_loss_ignores_masked_entries_and_has_finite_gradients():
    W_label = jb.rayleigh(jax.random.key(17), (2,), 4, 5)
    W_out = W_label.at[:, 3].set(7.0).at[:, :, 4].set(-2.0)
    mask = jnp.array([True, True, True, False])
    amask = jnp.array([True] * 4 + [False])
    np.testing.assert_allclose(multitask_label_loss(W_out, W_label, mask, amask), 0.0, atol=1e-7)
    g = jax.grad(lambda W: jnp.sum(multitask_label_loss(W, jnp.zeros_like(W))))(jnp.zeros_like(W_label))
    chex.assert_tree_all_finite(g)
    with pytest.raises(ValueError, match="antenna_mask"):
        multitask_label_loss(W_out, W_label, antenna_mask=jnp.ones(4, bool))


def test_eq29_sums_per_task_means_and_engine_loss_runs():
    W_label = jb.rayleigh(jax.random.key(18), (6,), 3, 4)
    W_out = jb.rayleigh(jax.random.key(19), (6,), 3, 4)
    task = jnp.array([0, 0, 1, 2, 2, 2])
    per = np.asarray(multitask_label_loss(W_out, W_label))
    expected = per[:2].mean() + per[2] + per[3:].mean()
    np.testing.assert_allclose(multitask_loss(W_out, W_label, task), expected, rtol=1e-6)
    H = jb.rayleigh(jax.random.key(20), (6,), 3, 4)
    loss, metrics = jax.jit(make_multitask_loss())(W_out, {"H": H, "W_label": W_label, "task": task})
    np.testing.assert_allclose(loss, per, rtol=1e-6)
    np.testing.assert_allclose(metrics["task_utility"][0], jb.sum_rate(H[0], W_out[0], 0.1), rtol=1e-5)
    np.testing.assert_allclose(metrics["task_utility"][2], jb.min_rate(H[2], W_out[2], 0.1), rtol=1e-5)
    np.testing.assert_allclose(metrics["task_utility"][5], jb.energy_efficiency(H[5], W_out[5], 0.1), rtol=1e-5)


# ------------------------------------------------------------------------------------ Algorithm 1


@pytest.mark.parametrize("B", [3, 12, 33])
def test_uniform_task_batch_has_exactly_equal_counts(B):
    sizes = (50, 40, 60)
    task, index = uniform_task_batch(jax.random.key(B), sizes, B)
    chex.assert_shape((task, index), (B,))
    assert np.bincount(np.asarray(task), minlength=3).tolist() == [B // 3] * 3
    np.testing.assert_array_equal(np.asarray(task[:3]), [0, 1, 2])  # interleaved: shards stay balanced
    for t in range(3):
        idx = np.asarray(index[task == t])
        assert len(set(idx.tolist())) == len(idx)  # without replacement within the batch
        assert idx.min() >= 0 and idx.max() < sizes[t]
    again = uniform_task_batch(jax.random.key(B), sizes, B)
    chex.assert_trees_all_equal((task, index), again)


def test_uniform_task_sampling_rejects_bad_sizes():
    for bad in ((10, 10.5, 10), (10, True, 10), 10):
        with pytest.raises(ValueError, match="sizes_per_task"):
            uniform_task_batch(jax.random.key(0), bad, 3)
    with pytest.raises(ValueError, match="batch_size"):
        random_task_batch(jax.random.key(0), (10, 10, 10), 2.0)
    with pytest.raises(ValueError, match="batch_size"):
        uniform_task_batch(jax.random.key(0), (10, 10, 10), 10)
    with pytest.raises(ValueError, match="sizes_per_task"):
        uniform_task_batch(jax.random.key(0), (10, 2, 10), 9)
    with pytest.raises(ValueError, match="sizes_per_task"):
        uniform_task_batch(jax.random.key(0), (10, 10), 9)


def test_uniform_task_epoch_visits_each_data_set_without_replacement():
    sizes = (20, 31, 25)
    task, index = uniform_task_epoch(jax.random.key(1), sizes, 6)
    chex.assert_shape((task, index), (10, 6))  # min size 20 // 2 per task per batch
    for row in np.asarray(task):
        assert np.bincount(row, minlength=3).tolist() == [2, 2, 2]
    for t in range(3):
        idx = np.asarray(index)[np.asarray(task) == t]
        assert len(set(idx.tolist())) == 20 and idx.max() < sizes[t]
    assert sorted(np.asarray(index)[np.asarray(task) == 0].tolist()) == list(range(20))


def test_random_task_batch_draws_tasks_uniformly_per_sample():
    sizes = (5, 7, 9)
    task, index = random_task_batch(jax.random.key(2), sizes, 3000)
    counts = np.bincount(np.asarray(task), minlength=3)
    assert np.all(np.abs(counts - 1000) < 120)
    sizes_of = np.asarray(sizes)[np.asarray(task)]
    assert np.all((np.asarray(index) >= 0) & (np.asarray(index) < sizes_of))
    unequal = [
        np.bincount(np.asarray(random_task_batch(jax.random.key(s), sizes, 12)[0]), minlength=3) for s in range(5)
    ]
    assert any(len(set(c.tolist())) > 1 for c in unequal)  # counts fluctuate, unlike Algorithm 1
