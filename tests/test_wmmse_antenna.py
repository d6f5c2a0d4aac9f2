"""WMMSE under per-antenna power constraints (#19): feasibility, never below its feasible starts, a known
optimum (one user), and first-order stationarity checked by autodiff of the sum rate (independent code)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb


def _col_power(W):
    return np.sum(np.abs(np.asarray(W, np.complex128)) ** 2, axis=-2)


@pytest.mark.parametrize("K,N,P,sigma2", [(6, 12, 1.0, 0.1), (4, 4, 10.0, 0.1)])
def test_feasible_and_never_below_the_scaled_baselines(K, N, P, sigma2):
    H = jb.rayleigh(jax.random.key(K + N), (200,), K, N)
    P_n = P / N
    W, info = jb.wmmse_antenna(H, P_n, sigma2, return_info=True)
    chex.assert_shape(W, (200, K, N))
    assert np.all(_col_power(W) <= P_n * (1 + 1e-6))  # every antenna, to 1e-6 relative
    sr = np.asarray(jb.sum_rate(H, W, sigma2))
    for start in (jb.rzf(H, P, sigma2), jb.wmmse(H, P, sigma2)):
        base = np.asarray(jb.sum_rate(H, jb.scale_antenna_power(start, P_n), sigma2))
        assert np.all(sr >= base * (1 - 1e-6)), (sr - base).min()
    np.testing.assert_allclose(info["utility"], sr, rtol=1e-4)
    # the per-antenna set lies inside the total-power ball of sum_n P_n: not above total-power WMMSE's mean
    assert sr.mean() <= float(jnp.mean(jb.sum_rate(H, jb.wmmse(H, P, sigma2, tol=1e-5), sigma2))) * 1.001


@pytest.mark.usefixtures("x64")
def test_one_user_reaches_the_phase_aligned_optimum():
    """K = 1: ``max |h^H w|^2`` s.t. ``|w_n|^2 <= P_n`` is every antenna at full power, phase-aligned with h:
    rate ``log2(1 + (sum_n sqrt(P_n) |h_n|)^2 / sigma2)``."""
    H = jb.rayleigh(jax.random.key(3), (20,), 1, 6, dtype=jnp.complex128)
    P_n = np.linspace(0.1, 0.6, 6)
    W = jb.wmmse_antenna(H, P_n, 0.1, tol=1e-10, max_iter=2000)
    opt = np.log2(1 + np.sum(np.sqrt(P_n) * np.abs(np.asarray(H)[:, 0]), -1) ** 2 / 0.1)
    np.testing.assert_allclose(jb.sum_rate(H, W, 0.1), opt, rtol=1e-6)


@pytest.mark.usefixtures("x64")
def test_the_result_is_a_stationary_point_of_the_sum_rate_on_the_per_antenna_set():
    """``W = Pi(W + t grad SR(W))`` (projected-gradient fixed point), the gradient by autodiff of ``jb.sum_rate``."""
    H = jb.rayleigh(jax.random.key(4), (8,), 4, 6, dtype=jnp.complex128)
    P_n = 1.0 / 6
    W = jb.wmmse_antenna(H, P_n, 0.1, tol=1e-12, max_iter=5000, window=20)
    g = jax.grad(lambda W: jnp.sum(jb.sum_rate(H, W, 0.1)))(W)
    g = jnp.conj(g)  # jax's gradient of a real function of complex W is the conjugate of the ascent direction
    for t in (1e-3, 1e-2):
        moved = jb.project_antenna_power(W + t * g, P_n)
        gap = np.linalg.norm(np.asarray(moved - W), axis=(-2, -1)) / (t * np.linalg.norm(np.asarray(g), axis=(-2, -1)))
        assert np.all(gap < 1e-3), gap
    # not trivially: one plain gradient step from the feasible start does move
    W0 = jb.scale_antenna_power(jb.rzf(H, 1.0, 0.1), P_n)
    g0 = jnp.conj(jax.grad(lambda W: jnp.sum(jb.sum_rate(H, W, 0.1)))(W0))
    moved0 = jb.project_antenna_power(W0 + 1e-2 * g0, P_n)
    assert np.all(
        np.linalg.norm(np.asarray(moved0 - W0), axis=(-2, -1)) / (1e-2 * np.linalg.norm(np.asarray(g0), axis=(-2, -1)))
        > 1e-2
    )


def test_per_antenna_budgets_masks_and_bad_arguments():
    H = jb.rayleigh(jax.random.key(5), (16,), 3, 4)
    P_n = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    W = jb.wmmse_antenna(H, P_n, 0.1)
    assert np.all(_col_power(W) <= P_n * (1 + 1e-6))
    mask = np.array([True, False, True])
    Wm = jb.wmmse_antenna(H, P_n, 0.1, mask=mask)
    assert np.all(np.asarray(Wm[:, 1]) == 0) and np.all(_col_power(Wm) <= P_n * (1 + 1e-6))
    np.testing.assert_allclose(
        jb.sum_rate(H, Wm, 0.1, mask=mask), jb.sum_rate(H[:, [0, 2]], jb.wmmse_antenna(H[:, [0, 2]], P_n, 0.1), 0.1),
        rtol=2e-3,
    )  # fmt: skip
    Wj = jax.jit(lambda H: jb.wmmse_antenna(H, 0.25, 0.1))(H)
    chex.assert_trees_all_close(Wj, jb.wmmse_antenna(H, 0.25, 0.1), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="P_n must be finite > 0"):
        jb.wmmse_antenna(H, np.array([0.1, 0.2, 0.0, 0.4]), 0.1)
    with pytest.raises(ValueError, match=r"P_n must be a scalar \(every antenna\) or per antenna"):
        jb.wmmse_antenna(H, np.ones(3), 0.1)
    with pytest.raises(ValueError, match="sigma2 must be finite > 0"):
        jb.wmmse_antenna(H, 0.25, -0.1)
    with pytest.raises(ValueError, match="inner_steps must be an int >= 1"):
        jb.wmmse_antenna(H, 0.25, 0.1, inner_steps=0)
    with pytest.raises(ValueError, match="tol must be"):
        jb.wmmse_antenna(H, 0.25, 0.1, tol=0.0)
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda p: jb.wmmse_antenna(H, p, 0.1))(-1.0)), 0)
