"""Losses of eqs. 17-18: cosine term at the label, phase invariance, finite gradients, masks."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam.train import losses

K, N = 4, 6


def _data(seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    H = jb.rayleigh(k1, (5,), K, N)
    W_label = jb.rzf(H, 1.0, 0.1)
    W = jb.gpa(jb.rayleigh(k2, (5,), K, N), 1.0)
    return H, W_label, W, k3


@pytest.mark.parametrize("similarity", losses.SIMILARITIES)
def test_cosine_term_is_zero_at_the_label_and_invariant_to_a_common_phase(similarity):
    H, W_label, W, key = _data()
    c = losses.cosine_similarity(W_label, W_label, similarity=similarity)
    chex.assert_trees_all_close(c, jnp.ones(5), atol=1e-6)
    phase = jnp.exp(1j * jax.random.uniform(key, (5, 1, 1), maxval=2 * jnp.pi)).astype(jnp.complex64)
    chex.assert_trees_all_close(
        losses.cosine_similarity(W_label, phase * W_label * 0.3, similarity=similarity), jnp.ones(5), atol=1e-5
    )
    c_other = losses.cosine_similarity(W_label, W, similarity=similarity)
    chex.assert_trees_all_close(losses.cosine_similarity(W_label, phase * W, similarity=similarity), c_other, atol=1e-5)
    assert np.all(np.asarray(c_other) < 0.99) and np.all(np.asarray(c_other) >= 0)
    # eq. 17 with lambda2 = 0 is exactly the cosine term: 0 at the label
    for u in jb.TASKS:
        l0 = losses.supervised_loss(u, H, phase * W_label, W_label, lambda1=1.0, lambda2=0.0, similarity=similarity)
        chex.assert_trees_all_close(l0, jnp.zeros(5), atol=1e-5)


def test_matrix_similarity_matches_the_trace_formula():
    _, W_label, W, _ = _data(1)
    ref = np.abs(np.einsum("bkn,bkn->b", np.conj(W_label), W)) ** 2 / (
        np.sum(np.abs(W_label) ** 2, (1, 2)) * np.sum(np.abs(W) ** 2, (1, 2))
    )
    np.testing.assert_allclose(losses.cosine_similarity(W_label, W), ref, rtol=1e-5)


def test_per_user_similarity_is_invariant_to_per_user_phases_and_matrix_is_not():
    _, W_label, _, key = _data(2)
    phases = jnp.exp(1j * jax.random.uniform(key, (5, K, 1), maxval=2 * jnp.pi)).astype(jnp.complex64)
    chex.assert_trees_all_close(
        losses.cosine_similarity(W_label, phases * W_label, similarity="per_user"), jnp.ones(5), atol=1e-5
    )
    assert np.all(np.asarray(losses.cosine_similarity(W_label, phases * W_label)) < 0.999)


@pytest.mark.parametrize("u", jb.TASKS)
def test_losses_value_and_finite_gradients(u):
    H, W_label, W, _ = _data(3)
    lam1, lam2 = 0.7, 0.2
    val = losses.supervised_loss(u, H, W, W_label, lambda1=lam1, lambda2=lam2)
    ref = lam1 * (1 - losses.cosine_similarity(W_label, W)) - lam2 * jb.utility(u, H, W, 0.1)
    chex.assert_trees_all_close(val, ref, rtol=1e-6)
    chex.assert_trees_all_close(losses.unsupervised_loss(u, H, W), -jb.utility(u, H, W, 0.1))
    for W0 in (W, jnp.zeros_like(W), W.at[:, 0].set(0)):
        g = jax.grad(lambda w: jnp.sum(losses.supervised_loss(u, H, w, W_label)))(W0)
        chex.assert_tree_all_finite(g)
        g = jax.grad(lambda w: jnp.sum(losses.unsupervised_loss(u, H, w)))(W0)
        chex.assert_tree_all_finite(g)


def test_masked_users_do_not_count():
    H, W_label, W, key = _data(4)
    mask = jnp.array([True, True, False, True])[None].repeat(5, 0)
    junk = jb.rayleigh(key, (5,), K, N)
    Wj = jnp.where(mask[..., None], W, junk)
    Wlj = jnp.where(mask[..., None], W_label, junk * 2)
    for u in jb.TASKS:
        a = losses.supervised_loss(u, H, W, W_label, mask=mask)
        b = losses.supervised_loss(u, H, Wj, Wlj, mask=mask)
        chex.assert_trees_all_close(a, b, rtol=1e-5)


def test_make_loss_and_errors():
    H, W_label, W, _ = _data(5)
    f = losses.make_loss("mr", supervised=True, lambda1=1.0, lambda2=0.1)
    loss, metrics = f(W, {"H": H, "W_label": W_label})
    chex.assert_shape(loss, (5,))
    assert set(metrics) == {"utility", "cosine", "label_utility"}
    with pytest.raises(ValueError, match="W_label"):
        f(W, {"H": H})
    with pytest.raises(ValueError, match="name"):
        losses.make_loss("xx", supervised=False)
    with pytest.raises(ValueError, match="similarity"):
        losses.cosine_similarity(W_label, W, similarity="nope")


def test_batch_sigma2_follows_the_noise_rule():
    """batch["sigma2"] is (B, 1) per sample or (B, K) per user; a flat (B,) with B != K is rejected."""
    H, W_label, W, _ = _data()  # B = 5, K = 4
    s2 = jnp.array([0.1, 0.2, 0.3, 0.4, 0.5])
    loss_fn = losses.make_loss("sr", supervised=False)
    for per in (s2[:, None], jnp.broadcast_to(s2[:, None], (5, K))):
        loss, _ = loss_fn(W, {"H": H, "sigma2": per})
        want = [-float(jb.sum_rate(H[b], W[b], float(s2[b]))) for b in range(5)]
        np.testing.assert_allclose(loss, want, rtol=1e-5)
    with pytest.raises(ValueError, match="sigma2"):
        loss_fn(W, {"H": H, "sigma2": s2})
    with pytest.raises(ValueError, match="sigma2"):
        losses.make_loss("sr", supervised=False, sigma2=0.0)
