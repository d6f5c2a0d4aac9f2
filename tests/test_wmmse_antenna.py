"""WMMSE under per-antenna power constraints (#19): feasibility, never below its feasible starts, a known
optimum (one user), and first-order stationarity checked by autodiff of the sum rate (independent code)."""

import inspect

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


# --- the beam update against an independent solver, convergence on near-far channels (#35, items 4, 5, 11) ---


def _qcqp_beams(A, b, P_n, W0):
    """Independent float64 solution of ``min sum_k w_k^H A w_k - 2 Re b_k^H w_k`` s.t. ``sum_k |w_k[n]|^2 <= P_n``
    on the real and imaginary parts, by scipy's SLSQP from the feasible ``W0`` (analytic gradients)."""
    from scipy.optimize import minimize

    K, N = b.shape
    cplx = lambda x: (x[: K * N] + 1j * x[K * N :]).reshape(K, N)
    real = lambda W: np.concatenate([W.real.ravel(), W.imag.ravel()])

    def f(x):
        W = cplx(x)
        g = 2 * (W @ A.T - b)  # d f / d conj(W), times 2 for the real parts
        return np.real(np.sum(np.conj(W) * (W @ A.T - 2 * b))), real(g)

    cons = {
        "type": "ineq",
        "fun": lambda x: P_n - np.sum(np.abs(cplx(x)) ** 2, 0),
        "jac": lambda x: (
            -2
            * np.concatenate(
                [
                    np.einsum("nm,kn->nkm", np.eye(N), cplx(x).real).reshape(N, -1),
                    np.einsum("nm,kn->nkm", np.eye(N), cplx(x).imag).reshape(N, -1),
                ],
                1,
            )
        ),
    }
    res = minimize(f, real(W0), jac=True, method="SLSQP", constraints=[cons], options={"ftol": 1e-15, "maxiter": 5000})
    return cplx(res.x)


@pytest.mark.usefixtures("x64")
def test_the_admm_beam_update_solves_the_per_antenna_quadratic():
    """One beam update (many ADMM steps) reaches the minimum scipy's SLSQP finds, on near-far channels where
    ``A``'s eigenvalues spread over four decades."""
    from jaxbeam.solvers import _common as C
    from jaxbeam.solvers.wmmse_antenna import _beam_update

    K, N, sigma2 = 4, 8, 0.1
    H = jb.core.channels.pathloss(jax.random.key(7), (3,), K, N, dtype=jnp.complex128)
    Hn = H / np.sqrt(sigma2)
    P_n = np.full((3, N), 1.0 / N)
    weights = jnp.ones((3, K))
    W0 = jb.scale_antenna_power(jb.rzf(H, 1.0, sigma2), P_n)
    Z, _ = _beam_update(Hn, W0, jnp.zeros_like(W0), weights, jnp.asarray(P_n), 2000)
    # the quadratic's data, recomputed here in numpy
    G = np.einsum("skn,sin->ski", np.conj(np.asarray(Hn)), np.asarray(W0))
    total = np.sum(np.abs(G) ** 2, -1) + 1
    gkk = np.diagonal(G, axis1=-2, axis2=-1)
    u, v = gkk / total, total / (total - np.abs(gkk) ** 2)
    for s in range(3):
        A = np.einsum("k,kn,km->nm", v[s] * np.abs(u[s]) ** 2, np.asarray(Hn[s]), np.conj(np.asarray(Hn[s])))
        b = (v[s] * u[s])[:, None] * np.asarray(Hn[s])
        assert np.linalg.eigvalsh(A)[-1] / np.linalg.eigvalsh(A)[-K] > 1e2  # ill-conditioned on its range
        f = lambda W, A=A, b=b: np.real(np.sum(np.conj(W) * (W @ A.T - 2 * b)))
        ref = _qcqp_beams(A, b, P_n[s], np.asarray(W0[s]))
        assert np.all(_col_power(ref) <= P_n[s] * (1 + 1e-7))
        np.testing.assert_allclose(f(np.asarray(Z[s])), f(ref), rtol=1e-7)  # A is singular: compare objectives
        assert np.all(_col_power(Z[s]) <= P_n[s] * (1 + 1e-9))
    del C


def test_strict_stop_converges_on_near_far_channels():
    """The strict label stop (tol 1e-9 over 10 steps) is reached on path-loss channels, in far fewer than the
    5,000-step cap (the projected-gradient update hit the cap on 12 of 16 such channels)."""
    H = jb.core.channels.pathloss(jax.random.key(0), (8,), 6, 12)
    W, info = jb.wmmse_antenna(H, 1.0 / 12, 0.1, tol=1e-9, window=10, max_iter=5000, return_info=True)
    assert np.all(np.asarray(info["converged"])), np.asarray(info["iterations"])
    assert np.median(np.asarray(info["iterations"])) < 2000
    assert np.all(_col_power(W) <= (1.0 / 12) * (1 + 1e-5))


def test_public_wmmse_per_antenna_honours_tol_and_window():
    H = jb.rayleigh(jax.random.key(8), (6,), 4, 6)
    loose = jb.wmmse(H, 1.0, power="antenna", tol=1e-2, window=1, return_info=True)[1]["iterations"]
    tight = jb.wmmse(H, 1.0, power="antenna", tol=1e-8, window=6, return_info=True)[1]["iterations"]
    assert np.all(np.asarray(loose) < np.asarray(tight))
    same = jb.wmmse_antenna(H, 1.0 / 6, 0.1, tol=1e-3, window=2)
    chex.assert_trees_all_close(jb.wmmse(H, 1.0, power="antenna", tol=1e-3, window=2), same, rtol=1e-5, atol=1e-6)
    for name, value in (("multiplier", "search"), ("stop", "paper")):
        with pytest.raises(ValueError, match=f"{name}='{value}' applies to power=\"total\" only"):
            jb.wmmse(H, 1.0, power="antenna", **{name: value})
    assert jb.wmmse.__module__ == "jaxbeam.solvers.wmmse" and "power" in inspect.signature(jb.wmmse).parameters
