"""BERT (eqs. 4-16): shapes, power constraint, K-independence, padding, permutation equivariance."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb

N, F, L, C = 4, 16, 2, 2


@pytest.fixture(scope="module")
def model_and_vars():
    model = jb.models.BERT(num_antennas=N, features=F, num_layers=L, num_heads=C)
    H = jb.rayleigh(jax.random.key(0), (2,), 3, N)
    return model, model.init(jax.random.key(1), H, 1.0)


def test_shapes_dtypes_and_parameter_names(model_and_vars):
    model, v = model_and_vars
    H = jb.rayleigh(jax.random.key(2), (5,), 3, N)
    W = model.apply(v, H, 1.0)
    chex.assert_shape(W, (5, 3, N))
    assert W.dtype == jnp.complex64
    assert set(v["params"]) == {"embed", "encoder", "head"}
    assert set(v["params"]["encoder"]) == {f"block_{i}" for i in range(L)}
    chex.assert_shape(v["params"]["embed"]["fc"]["kernel"], (2 * N, F))  # eq. 7: W_fc in R^{2N x F}
    chex.assert_shape(v["params"]["head"]["kernel"], (F, 2 * N))  # eq. 14: [W_real, W_imag]


def test_power_constraint_per_sample(model_and_vars):
    model, v = model_and_vars
    H = jb.rayleigh(jax.random.key(3), (6,), 3, N)
    P = jnp.array([0.5, 1.0, 2.0, 3.0, 1.5, 0.1])
    W = model.apply(v, H, P)
    power = jnp.sum(jnp.abs(W) ** 2, axis=(-2, -1))
    assert np.all(np.asarray(power) <= np.asarray(P) * (1 + 1e-5))


@pytest.mark.parametrize("K", [1, 2, 5, 9])
def test_any_number_of_users_with_the_same_parameters(model_and_vars, K):
    model, v = model_and_vars
    W = model.apply(v, jb.rayleigh(jax.random.key(K), (2,), K, N), 1.0)
    chex.assert_shape(W, (2, K, N))
    chex.assert_tree_all_finite(W)


def test_padded_users_get_zero_beams_and_do_not_change_real_users(model_and_vars):
    model, v = model_and_vars
    H = jb.rayleigh(jax.random.key(4), (3,), 3, N)
    W = model.apply(v, H, 2.0)
    garbage = 10 * jb.rayleigh(jax.random.key(5), (3,), 2, N)  # padded rows need not be zero
    Hp = jnp.concatenate([H, garbage], axis=1)
    mask = jnp.array([True, True, True, False, False])[None].repeat(3, 0)
    Wp = model.apply(v, Hp, 2.0, mask=mask)
    chex.assert_trees_all_close(Wp[:, :3], W, atol=1e-5, rtol=1e-5)
    assert np.all(np.asarray(Wp[:, 3:]) == 0)


def test_permutation_equivariance(model_and_vars):
    model, v = model_and_vars
    H = jb.rayleigh(jax.random.key(6), (2,), 5, N)
    perm = jnp.array([3, 0, 4, 1, 2])
    W = model.apply(v, H, 1.0)
    Wperm = model.apply(v, H[:, perm], 1.0)
    chex.assert_trees_all_close(Wperm, W[:, perm], atol=1e-5, rtol=1e-5)


def test_gradients_finite_and_jit(model_and_vars):
    model, v = model_and_vars
    H = jb.rayleigh(jax.random.key(7), (2,), 3, N)

    @jax.jit
    def loss(params):
        return -jnp.mean(jb.sum_rate(H, model.apply({"params": params}, H, 1.0), 0.1))

    g = jax.grad(loss)(v["params"])
    chex.assert_tree_all_finite(g)
    assert any(float(jnp.max(jnp.abs(x))) > 0 for x in jax.tree.leaves(g))


def test_bad_inputs_raise(model_and_vars):
    model, v = model_and_vars
    with pytest.raises(ValueError, match="num_antennas"):
        model.apply(v, jb.rayleigh(jax.random.key(8), (2,), 3, N + 1), 1.0)
    with pytest.raises(ValueError, match="H must be a complex"):
        model.apply(v, jnp.ones((2, 3, N)), 1.0)
    with pytest.raises(ValueError, match="mask"):
        model.apply(v, jb.rayleigh(jax.random.key(8), (2,), 3, N), 1.0, mask=jnp.ones((2, 4), bool))


FRESH = {  # the cpu preset's sizes; bound on the fresh power [W] at P = 1 W
    "bert": (lambda N: jb.models.BERT(num_antennas=N, features=128, num_layers=3, num_heads=4), 0.9),
    "ubert-element": (lambda N: jb.models.UBERT(features=128, num_layers=3, num_heads=4, head="element"), 0.9),
    "ubert-structured": (lambda N: jb.models.UBERT(features=128, num_layers=3, num_heads=4, head="structured"), 0.96),
    "ubert-balanced": (lambda N: jb.models.UBERT(features=128, num_layers=3, num_heads=4, head="balanced"), 0.96),
}


@pytest.mark.parametrize(  # CI: (6, 12) with BERT and UBERT's default (balanced) head
    "K, N, name",
    [
        pytest.param(K, N, name, marks=() if K == 6 and name in ("bert", "ubert-balanced") else pytest.mark.slow)
        for K, N in ((6, 12), (8, 16))
        for name in FRESH
    ],
)
def test_fresh_models_start_inside_the_gpa_ball_where_power_is_learnable(K, N, name):
    """With the output layer initialised inside the unit ball of eq. 15, a fresh model transmits below P and
    its transmit power has a gradient; outside the ball the GPA pins the power at P (zero gradient), and EE,
    whose optimum lies below P, could never be learned."""
    H = jb.rayleigh(jax.random.key(K), (16,), K, N)
    make, bound = FRESH[name]
    model = make(N)
    args = (H, 1.0) if name == "bert" else (H, 1.0, jnp.full((16,), 2))
    params = jax.jit(model.init)(jax.random.key(0), *args)["params"]

    def power(p):
        return jb.transmit_power(model.apply({"params": p}, *args))

    # jitted: op by op, the balanced head's fixed point and its gradient take minutes on 2 cores
    assert float(jnp.max(jax.jit(power)(params))) < bound  # the structured head starts at RZF with 0.95 P
    grads = jax.jit(jax.grad(lambda p: jnp.mean(power(p))))(params)
    out = "total_power" if "total_power" in grads else "head"  # the parameters that set the power
    assert float(jnp.sum(jnp.abs(grads[out]["kernel"]))) > 1e-3


def test_angle_domain_bert_is_the_spatial_model_on_dft_channels(model_and_vars):
    """``domain="angle"`` (paper 003 eq. 18): the same parameters applied to ``H F``, beams mapped back by
    ``F^H``; feasible, and padded users still get zero beams."""
    model, v = model_and_vars
    angle = model.clone(domain="angle")
    H = jb.rayleigh(jax.random.key(3), (4,), 3, N)
    P = jnp.array([1.0, 2.0, 0.5, 3.0])
    W = jax.jit(angle.apply)(v, H, P)
    ref = jb.spatial_domain(model.apply(v, jb.angle_domain(H), P))
    chex.assert_trees_all_close(W, ref, atol=1e-6)
    assert not np.allclose(W, model.apply(v, H, P), atol=1e-3)  # a different view of the channel
    assert np.all(np.asarray(jnp.sum(jnp.abs(W) ** 2, axis=(-2, -1))) <= np.asarray(P) * (1 + 1e-5))
    mask = jnp.array([True, False, True])
    Wm = angle.apply(v, H, P, mask=mask)
    assert np.all(np.asarray(Wm[:, 1]) == 0)
    chex.assert_trees_all_close(Wm[:, [0, 2]], angle.apply(v, H[:, [0, 2]], P), atol=2e-5)
    with pytest.raises(ValueError, match="domain must be one of"):
        model.clone(domain="dft").apply(v, H, P)
