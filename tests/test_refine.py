"""``jb.refine`` (paper 002, eq. 8) against finite differences, the power constraint, masks and the solvers."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb

SIGMA2 = 0.1


def channels(B, K, N, seed=0, dtype=jnp.complex64):
    return jb.rayleigh(jax.random.key(seed), (B,), K, N, dtype=dtype)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("utility, normalize", [(u, False) for u in jb.TASKS] + [("sr", True), ("mr", True)])
def test_one_fixed_step_is_the_real_gradient_by_finite_differences(utility, normalize):
    """Inside the power ball a fixed step moves W by eta times G = dU/dRe W + j dU/dIm W (``normalize``:
    by eta sqrt(P) G / ||G||_F), G computed here by central differences of the utility on each real
    coordinate."""
    H = np.asarray(channels(2, 3, 4, seed=1, dtype=jnp.complex128))
    P = 2.0
    W0 = 0.3 * np.asarray(jb.rzf(H, P, SIGMA2))  # ||W0||^2 = 0.09 P: the projection is inactive
    eta, h = 1e-4, 1e-6
    W1 = np.asarray(jb.refine(H, W0, P, SIGMA2, utility, steps=1, step_size=eta, normalize=normalize))
    U = lambda W: np.asarray(jb.utility(utility, H, W, SIGMA2, 0.5))
    G = np.zeros_like(W0)
    for idx in np.ndindex(W0.shape[1:]):
        for unit in (1.0, 1j):
            E = np.zeros_like(W0)
            E[(slice(None), *idx)] = unit * h
            G[(slice(None), *idx)] += unit * (U(W0 + E) - U(W0 - E)) / (2 * h)
    if normalize:
        G = np.sqrt(P) * G / np.sqrt(np.sum(np.abs(G) ** 2, axis=(1, 2), keepdims=True))
    np.testing.assert_allclose((W1 - W0) / eta, G, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("utility, project", [("sr", "ball"), ("mr", "ball"), ("ee", "ball"), ("sr", "sphere")])
def test_every_step_is_feasible_and_the_default_never_lowers_the_utility(utility, project):
    H = channels(32, 8, 8, seed=2)
    P = jnp.linspace(0.5, 3.0, 32)
    step = jax.jit(lambda H, W: jb.refine(H, W, P, SIGMA2, utility, steps=2, project=project))  # one compile
    W0 = jb.mrt(H, P)
    W, prev = W0, jb.utility(utility, H, W0, SIGMA2)
    for _ in range(5):
        W = step(H, W)
        chex.assert_shape(W, H.shape)
        chex.assert_type(W, jnp.complex64)
        power = np.asarray(jb.transmit_power(W))
        assert np.all(power <= np.asarray(P) * (1 + 1e-5))
        if project == "sphere":
            np.testing.assert_allclose(power, P, rtol=1e-5)
        u = jb.utility(utility, H, W, SIGMA2)
        assert np.all(np.asarray(u) >= np.asarray(prev) * (1 - 1e-5)), utility
        prev = u
    assert float(jnp.mean(prev)) > 1.05 * float(jnp.mean(jb.utility(utility, H, W0, SIGMA2)))


def test_from_rzf_it_closes_most_of_the_gap_to_wmmse_where_rzf_is_weak():
    """K > N at 20 dB: RZF reaches about half of WMMSE's sum rate; 100 steps recover most of the rest and
    stay below WMMSE (a local ascent from a feasible point)."""
    H = channels(64, 12, 8, seed=3)
    s2 = 0.01
    rzf = jb.rzf(H, 1.0, s2)
    sr = lambda W: float(jnp.mean(jb.sum_rate(H, W, s2)))
    refined = sr(jax.jit(lambda H, W: jb.refine(H, W, 1.0, s2, steps=100))(H, rzf))
    wmmse = sr(jb.wmmse(H, 1.0, s2))
    assert sr(rzf) < 0.6 * wmmse and 0.85 * wmmse < refined <= 1.001 * wmmse


def test_zero_steps_is_the_projection_and_zero_beams_stay_zero():
    H = channels(4, 3, 5, seed=4)
    W = 3.0 * jb.mrt(H, 1.0)
    np.testing.assert_allclose(jb.refine(H, W, 1.0, SIGMA2, steps=0), jb.project_power(W, 1.0), rtol=1e-6)
    Z = jnp.zeros_like(H)
    for project in ("ball", "sphere"):
        out = jb.refine(H, Z, 1.0, SIGMA2, steps=3, project=project)  # zero gradient at W = 0: no move, no NaN
        np.testing.assert_array_equal(np.asarray(out), 0)


def test_padded_users_are_inert():
    """Padding 5 users to 7 with zero channels and a mask gives the same beams for the 5 and zeros for the 2."""
    H = channels(6, 5, 8, seed=5)
    W0 = jb.rzf(H, 1.0, SIGMA2)
    pad = lambda X: jnp.concatenate([X, jnp.zeros((6, 2, 8), X.dtype)], axis=1)
    mask = jnp.arange(7) < 5
    for utility in jb.TASKS:
        ref = jb.refine(H, W0, 1.0, SIGMA2, utility, steps=5)
        junk = pad(W0).at[:, 5:].set(0.1)  # beams given to absent users are dropped
        out = jb.refine(pad(H), junk, 1.0, SIGMA2, utility, 5, mask=mask)
        np.testing.assert_array_equal(np.asarray(out[:, 5:]), 0)
        np.testing.assert_allclose(out[:, :5], ref, atol=2e-5, err_msg=utility)


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("step_size, normalize", [(1e-2, False), (0.05, True)])
def test_differentiable_through_the_steps(step_size, normalize):
    """d/dW0 of the refined sum rate matches central differences (fixed or normalised step: smooth in W0),
    and the default (backtracking) gives finite gradients under jit and vmap."""
    H = channels(1, 3, 4, seed=6, dtype=jnp.complex128)
    W0 = 0.5 * jb.rzf(H, 1.0, SIGMA2)
    refined = lambda W: jb.refine(H, W, 1.0, SIGMA2, steps=4, step_size=step_size, normalize=normalize)
    out = lambda W: jnp.sum(jb.sum_rate(H, refined(W), SIGMA2))
    g = np.asarray(jnp.conj(jax.grad(out)(W0)))
    E = np.zeros(W0.shape, complex)
    E[0, 1, 2] = 1e-6
    fd = (out(W0 + E) - out(W0 - E)) / 2e-6
    np.testing.assert_allclose(g[0, 1, 2].real, fd, rtol=1e-5)
    f = jax.jit(jax.vmap(jax.grad(lambda W, H: jnp.sum(jb.sum_rate(H, jb.refine(H, W, 1.0, SIGMA2, steps=3))))))
    G = f(jnp.broadcast_to(W0, (2, *W0.shape)), jnp.broadcast_to(H, (2, *H.shape)))
    assert np.all(np.isfinite(np.asarray(G)))


@pytest.mark.parametrize(
    "kw, arg",
    [
        ({"steps": -1}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"utility": "rate"}, "utility"),
        ({"project": "cube"}, "project"),
        ({"step_size": -0.1}, "step_size"),
        ({"normalize": True}, "step_size"),
        ({"P": 0.0}, "P"),
    ],
)
def test_bad_arguments_raise_naming_them(kw, arg):
    H = channels(2, 3, 4)
    args = {"P": 1.0, **kw}
    with pytest.raises(ValueError, match=arg):
        jb.refine(H, jb.mrt(H, 1.0), args.pop("P"), SIGMA2, **args)
    with pytest.raises(ValueError, match="W0"):
        jb.refine(H, jb.mrt(H, 1.0)[..., :3], 1.0, SIGMA2)


def test_batch_mean_reading_of_a_fixed_step_is_the_per_sample_step_over_the_batch():
    """Paper 002's eta read as the step of a batch-mean loss: the gradient of ``mean_b U_b`` with respect to
    sample b is ``grad U_b / B``, so each sample moves ``eta / B`` (checked by autodiff of the batch mean)."""
    H = jb.rayleigh(jax.random.key(4), (8,), 3, 4)
    W0 = jb.rzf(H, 1.0, 0.01)
    a = jb.refine(H, W0, 1.0, 0.01, steps=3, step_size=1e-2, step_reading="batch_mean", project="sphere")
    b = jb.refine(H, W0, 1.0, 0.01, steps=3, step_size=1e-2 / 8, project="sphere")
    chex.assert_trees_all_close(a, b, rtol=1e-6, atol=1e-7)
    g = jnp.conj(jax.grad(lambda W: jnp.mean(jb.sum_rate(H, W, 0.01)))(W0))  # steepest ascent of the mean
    one = jb.refine(H, W0, 1.0, 0.01, steps=1, step_size=1e-2, step_reading="batch_mean", project="sphere")
    chex.assert_trees_all_close(one, jb.project_power(W0 + 1e-2 * g, 1.0), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="step_reading must be one of"):
        jb.refine(H, W0, 1.0, 0.01, step_size=1e-2, step_reading="mean")
    with pytest.raises(ValueError, match="reads a fixed step"):
        jb.refine(H, W0, 1.0, 0.01, step_reading="batch_mean")
