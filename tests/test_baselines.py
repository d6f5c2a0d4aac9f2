"""Baselines of Sec. VI-A6 (MLP, CNN, GCN, GAT, GPT): output layer + GPA, padding, equivariance, causality."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb

K, N, F = 4, 5, 16

BUILDERS = {
    "MLP": lambda: jb.models.MLP(num_users=K, num_antennas=N, features=F, num_layers=2),
    "CNN": lambda: jb.models.CNN(num_users=K, num_antennas=N, features=F, num_layers=2, channels=4),
    "GCN": lambda: jb.models.GCN(num_antennas=N, features=F, num_layers=2),
    "GAT": lambda: jb.models.GAT(num_antennas=N, features=F, num_layers=2, num_heads=2),
    "GPT": lambda: jb.models.GPT(num_antennas=N, features=F, num_layers=1, num_heads=2),
}
ANY_K = ("GCN", "GAT", "GPT")


@pytest.fixture(scope="module")
def models():
    H = jb.rayleigh(jax.random.key(0), (2,), K, N)
    out = {}
    for i, (name, build) in enumerate(BUILDERS.items()):
        model = build()
        out[name] = (model, jax.jit(model.init)(jax.random.key(i), H, 1.0), jax.jit(model.apply))
    return out


@pytest.mark.parametrize("name", list(BUILDERS))
def test_shape_dtype_power_and_finite_gradients(models, name):
    model, v, fwd = models[name]
    H = jb.rayleigh(jax.random.key(1), (3,), K, N)
    P = jnp.array([0.5, 2.0, 3.0])
    W = fwd(v, H, P)
    chex.assert_shape(W, (3, K, N))
    assert W.dtype == jnp.complex64
    assert np.all(np.asarray(jnp.sum(jnp.abs(W) ** 2, axis=(-2, -1))) <= np.asarray(P) * (1 + 1e-5))

    def neg_rate(params):
        return -jnp.mean(jb.sum_rate(H, model.apply({"params": params}, H, P), 0.1))

    grads = jax.jit(jax.grad(neg_rate))(v["params"])
    chex.assert_tree_all_finite(grads)
    assert sum(float(jnp.sum(jnp.abs(g))) for g in jax.tree.leaves(grads)) > 0


@pytest.mark.parametrize("name", ["MLP", "CNN"])
def test_fixed_size_models_reject_another_K_or_N(models, name):
    model, v, _ = models[name]
    for shape in ((K + 1, N), (K, N + 1)):
        with pytest.raises(ValueError, match="H must have"):
            model.apply(v, jnp.zeros((2,) + shape, jnp.complex64), 1.0)


@pytest.mark.parametrize("name", ["MLP", "CNN"])
def test_fixed_size_models_zero_absent_users(models, name):
    _, v, fwd = models[name]
    H = jb.rayleigh(jax.random.key(2), (2,), K, N)
    mask = jnp.array([[True, False, True, True], [True, True, True, False]])
    W = fwd(v, H, 1.0, mask=mask)
    assert np.all(np.asarray(W)[~np.asarray(mask)] == 0)
    # an absent user's channel is ignored: changing it changes nothing
    W2 = fwd(v, H.at[0, 1].set(9.0).at[1, 3].set(-4.0j), 1.0, mask=mask)
    chex.assert_trees_all_close(W, W2, atol=1e-6)


@pytest.mark.parametrize("name", ANY_K)
def test_graph_and_gpt_models_run_for_other_K_and_ignore_padded_users(models, name):
    _, v, fwd = models[name]
    H = jb.rayleigh(jax.random.key(3), (2,), 6, N)
    W = fwd(v, H, 1.0)
    chex.assert_shape(W, (2, 6, N))
    garbage = 10 * jb.rayleigh(jax.random.key(4), (2,), 2, N)
    Hp = jnp.concatenate([H, garbage], axis=1)  # padding at the end (the sequence order matters for GPT)
    mask = jnp.broadcast_to(jnp.arange(8) < 6, (2, 8))
    Wp = fwd(v, Hp, 1.0, mask=mask)
    chex.assert_trees_all_close(Wp[:, :6], W, atol=2e-5)
    assert np.all(np.asarray(Wp[:, 6:]) == 0)


@pytest.mark.parametrize("name", ["GCN", "GAT"])
def test_graph_models_are_permutation_equivariant_with_padding_anywhere(models, name):
    _, v, fwd = models[name]
    H = jb.rayleigh(jax.random.key(5), (2,), 7, N)
    mask = jnp.array([[True, True, False, True, True, True, True], [True] * 6 + [False]])
    perm = jnp.array([3, 0, 6, 1, 5, 2, 4])
    W = fwd(v, H, 1.0, mask=mask)
    Wperm = fwd(v, H[:, perm], 1.0, mask=mask[:, perm])
    chex.assert_trees_all_close(Wperm, W[:, perm], atol=2e-5)


def test_gpt_is_causal_over_users(models):
    _, v, fwd = models["GPT"]
    H = jb.rayleigh(jax.random.key(6), (2,), 6, N)
    k = 3
    H2 = H.at[:, k].set(jb.rayleigh(jax.random.key(7), (2,), 1, N)[:, 0])
    W, W2 = fwd(v, H, 1.0), fwd(v, H2, 1.0)

    # The GPA (eq. 15) rescales a whole sample by one positive number, so compare directions: the beams
    # of users < k before the GPA are equal, hence equal up to that per-sample scale after it.
    def direction(X):
        return X / jnp.linalg.norm(X.reshape(X.shape[0], -1), axis=-1)[:, None, None]

    chex.assert_trees_all_close(direction(W[:, :k]), direction(W2[:, :k]), atol=2e-5)
    assert not np.allclose(direction(W[:, k:]), direction(W2[:, k:]), atol=1e-3)
    # and it is not bidirectional: changing user 0 moves the later users' beams
    W3 = fwd(v, H.at[:, 0].multiply(-1j), 1.0)
    assert not np.allclose(direction(W[:, 1:]), direction(W3[:, 1:]), atol=1e-3)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_fresh_baselines_transmit_below_P_so_power_is_learnable(models, name):
    """Same output-layer initialisation as BERT (jaxbeam.models.bert.output_init): inside the GPA ball."""
    model, v, fwd = models[name]
    H = jb.rayleigh(jax.random.key(5), (8,), K, N)
    assert float(jnp.max(jb.transmit_power(fwd(v, H, 1.0)))) < 0.9
