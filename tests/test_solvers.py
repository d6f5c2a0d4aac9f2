"""Label solvers: WMMSE vs an independent numpy WMMSE, monotonicity, feasibility, masks, the exact
max-min optimality conditions, and the SCA quality targets of issue 3 (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam.solvers import wmmse_beams

SIGMA2 = 0.1


@pytest.fixture(scope="module", autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def channels(B, K, N, seed=0):
    return jb.rayleigh(jax.random.key(seed), (B,), K, N, dtype=jnp.complex128)


# ------------------------------------------------------------------------------- independent reference
def numpy_wmmse(H, P, sigma2, tol=1e-4, max_iter=500):
    """Textbook N x N WMMSE (Shi et al. 2011), one sample, eigendecomposition + bisection for mu."""
    K, N = H.shape

    def sr(W):
        G2 = np.abs(H.conj() @ W.T) ** 2
        s = np.diag(G2)
        return np.sum(np.log2(1 + s / (G2.sum(1) - s + sigma2)))

    A = H.T @ H.conj() + K * sigma2 / P * np.eye(N)
    W = np.linalg.solve(A, H.T).T
    W *= np.sqrt(P / K) / np.linalg.norm(W, axis=1, keepdims=True)
    U = sr(W)
    for _ in range(max_iter):
        G = H.conj() @ W.T
        tot = np.sum(np.abs(G) ** 2, 1) + sigma2
        u = np.diag(G) / tot
        v = 1 / (1 - np.abs(np.diag(G)) ** 2 / tot)
        A = (H.T * (v * np.abs(u) ** 2)) @ H.conj()
        B = H.T * (u * v)
        lam, V = np.linalg.eigh(A)
        phi = np.sum(np.abs(V.conj().T @ B) ** 2, 1)
        pw = lambda mu, phi=phi, lam=lam: np.sum(phi / (np.maximum(lam, 0) + mu) ** 2)
        lo, hi = 0.0, 1.0
        while pw(hi) > P:
            hi *= 2
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if pw(mid) > P else (lo, mid)
        W = np.linalg.solve(A + hi * np.eye(N), B).T
        U_new = sr(W)
        done = abs(U_new - U) <= tol * abs(U)
        U = U_new
        if done:
            break
    return W, U


@pytest.mark.parametrize("multiplier", ["closed", "search"])
@pytest.mark.parametrize("P", [1.0, 3.0])
def test_wmmse_matches_numpy_reference(P, multiplier):
    H = channels(12, 6, 12, seed=1)
    W = jax.jit(lambda H: jb.wmmse(H, P, SIGMA2, multiplier=multiplier))(H)
    ours = np.asarray(jb.sum_rate(H, W, SIGMA2))
    ref = np.array([numpy_wmmse(np.asarray(h), P, SIGMA2)[1] for h in H])
    gap = abs(ours.mean() / ref.mean() - 1)
    assert gap < 1e-3, (ours.mean(), ref.mean())
    np.testing.assert_array_less(np.asarray(jb.transmit_power(W)), P * (1 + 1e-6))


@pytest.mark.parametrize("multiplier", ["closed", "search"])
def test_wmmse_utility_never_decreases(multiplier):
    H = channels(8, 6, 12, seed=2)
    P = jnp.asarray([0.5, 1.0, 2.0, 3.0] * 2)
    state = jb.wmmse_init(H, P, SIGMA2)
    U = [state.utility]
    step = jax.jit(lambda s: jb.wmmse_step(s, H, P, SIGMA2, tol=1e-14, multiplier=multiplier))
    for _ in range(25):
        state = step(state)
        U.append(state.utility)
    U = np.stack(U)
    assert np.all(np.diff(U, axis=0) >= -1e-9 * U[:-1]), np.diff(U, axis=0).min()
    assert np.all(U[-1] > U[0])  # RZF is improved
    W = wmmse_beams(state, H, SIGMA2)
    np.testing.assert_allclose(np.asarray(jb.sum_rate(H, W, SIGMA2)), U[-1], rtol=1e-10)
    np.testing.assert_allclose(np.asarray(jb.transmit_power(W)), np.asarray(P), rtol=1e-10)


def test_wmmse_closed_multiplier_is_the_kkt_multiplier_at_convergence():
    """Both multipliers reach the same stationary points, where mu = sum_k v_k |u_k|^2 sigma2 / P."""
    H = channels(16, 6, 12, seed=7)
    out = {}
    for m in ("closed", "search"):
        state = jb.wmmse_init(H, 1.0, SIGMA2)
        step = jax.jit(lambda s, m=m: jb.wmmse_step(s, H, 1.0, SIGMA2, tol=1e-14, multiplier=m))
        for _ in range(400):
            state = step(state)
        out[m] = state
    np.testing.assert_allclose(np.asarray(out["closed"].utility), np.asarray(out["search"].utility), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(out["closed"].mu), np.asarray(out["search"].mu), rtol=1e-5)


def test_wmmse_weights_and_info():
    H = channels(6, 4, 8, seed=3)
    w = jnp.asarray([4.0, 1.0, 1.0, 1.0])
    W1, info = jb.wmmse(H, 1.0, SIGMA2, weights=w, return_info=True)
    W0 = jb.wmmse(H, 1.0, SIGMA2)
    r1, r0 = jb.rates(H, W1, SIGMA2), jb.rates(H, W0, SIGMA2)
    assert np.all(np.asarray(r1[:, 0]) > np.asarray(r0[:, 0]))  # the weighted user gains
    np.testing.assert_allclose(np.asarray(info["utility"]), np.asarray(r1 @ w), rtol=1e-10)
    assert info["converged"].all() and (info["iterations"] >= 1).all()


# --------------------------------------------------------------------------------------- exact max-min
@pytest.fixture(scope="module")
def mr_case():
    H = channels(10, 6, 12, seed=4)
    with jax.enable_x64(True):
        W, info = jax.jit(lambda H: jb.maxmin_exact(H, 1.0, SIGMA2, return_info=True))(H)
    return H, W, info


def test_exact_maxmin_balances_sinr_at_full_power(mr_case):
    H, W, info = mr_case
    s = np.asarray(jb.sinr(H, W, SIGMA2))
    assert np.max(s.max(1) / s.min(1) - 1) < 1e-8
    np.testing.assert_allclose(s.min(1), np.asarray(info["sinr"]), rtol=1e-8)
    np.testing.assert_allclose(np.asarray(jb.transmit_power(W)), 1.0, rtol=1e-9)


def test_exact_maxmin_beats_rzf_and_random_points(mr_case):
    H, W, _ = mr_case
    mr = np.asarray(jb.min_rate(H, W, SIGMA2))
    assert np.all(mr >= np.asarray(jb.min_rate(H, jb.rzf(H, 1.0, SIGMA2), SIGMA2)) - 1e-12)
    R = jax.random.normal(jax.random.key(5), (200,) + H.shape, dtype=H.dtype)
    R = jb.project_power(R / jnp.sqrt(jnp.sum(jnp.abs(R) ** 2, (-2, -1), keepdims=True)), 1.0)
    best_random = np.asarray(jb.min_rate(H[None], R, SIGMA2)).max(0)
    assert np.all(mr > best_random)
    # And perturbations of the optimum on the power sphere never improve the min rate (local check).
    D = jax.random.normal(jax.random.key(6), (50,) + H.shape, dtype=H.dtype)
    Wp = W[None] + 1e-3 * D
    Wp = Wp * jnp.sqrt(1.0 / jb.transmit_power(Wp))[..., None, None]
    assert np.all(np.asarray(jb.min_rate(H[None], Wp, SIGMA2)) <= mr[None] + 1e-12)


def test_sca_mr_reaches_exact_optimum(mr_case):
    H, W, _ = mr_case
    Ws = jax.jit(lambda H: jb.sca(H, 1.0, SIGMA2, "mr"))(H)
    exact = np.asarray(jb.min_rate(H, W, SIGMA2))
    ours = np.asarray(jb.min_rate(H, Ws, SIGMA2))
    assert ours.mean() >= 0.99 * exact.mean(), (ours.mean(), exact.mean())
    assert np.all(ours <= exact + 1e-9)  # the exact solver is an upper bound
    np.testing.assert_array_less(np.asarray(jb.transmit_power(Ws)), 1.0 + 1e-6)


# ------------------------------------------------------------------------------------------------ SCA
def test_sca_sr_never_below_wmmse():
    H = channels(12, 6, 12, seed=7)
    P = jnp.asarray([1.0, 2.0, 3.0] * 4)
    Ww = jb.wmmse(H, P, SIGMA2)
    Ws = jax.jit(lambda H: jb.sca(H, P, SIGMA2, "sr"))(H)
    sw, ss = np.asarray(jb.sum_rate(H, Ww, SIGMA2)), np.asarray(jb.sum_rate(H, Ws, SIGMA2))
    assert np.all(ss >= sw - 1e-12)
    np.testing.assert_array_less(np.asarray(jb.transmit_power(Ws)), np.asarray(P) * (1 + 1e-6))


def test_sca_ee_beats_wmmse_power_line_search():
    H = channels(8, 6, 12, seed=8)
    P, Pc = 3.0, 0.5
    We = jax.jit(lambda H: jb.sca(H, P, SIGMA2, "ee", Pc))(H)
    ee = np.asarray(jb.energy_efficiency(H, We, SIGMA2, Pc))
    pw = np.asarray(jb.transmit_power(We))
    assert np.all(pw <= P * (1 + 1e-6)) and np.all(np.isfinite(ee))
    grid = np.geomspace(0.02, 1.0, 16) * P
    ref_all = jax.jit(jax.vmap(lambda p: jb.energy_efficiency(H, jb.wmmse(H, p, SIGMA2), SIGMA2, Pc)))(grid)
    ref = np.asarray(ref_all).max(0)  # includes full power (grid[-1] = P)
    assert ee.mean() >= 0.995 * ref.mean(), (ee.mean(), ref.mean())
    assert np.all(ee >= 0.98 * ref)
    assert np.any(pw < 0.9 * P)  # the power level is searched


# ------------------------------------------------------------------------------------- masks, inputs
def _pad(H, K_pad):
    B, K, N = H.shape
    Hp = jnp.concatenate([H, jnp.zeros((B, K_pad - K, N), H.dtype)], axis=1)
    mask = jnp.arange(K_pad) < K
    return Hp, jnp.broadcast_to(mask, (B, K_pad))


@pytest.mark.parametrize(
    "solve",
    [
        lambda H, m: jb.wmmse(H, 1.0, SIGMA2, mask=m),
        lambda H, m: jb.sca(H, 1.0, SIGMA2, "ee", mask=m, max_iter=5),
        lambda H, m: jb.sca(H, 1.0, SIGMA2, "mr", mask=m, max_iter=5),
        lambda H, m: jb.maxmin_exact(H, 1.0, SIGMA2, mask=m),
        lambda H, m: jb.maxmin_exact(H, 1.0, SIGMA2, mask=m, method="bisection", bisect_steps=20),
    ],
    ids=["wmmse", "sca-ee", "sca-mr", "exact", "exact-bisection"],
)
def test_padded_users_give_the_same_solution(solve):
    H = channels(4, 4, 8, seed=9)
    Hp, mask = _pad(H, 6)
    W = solve(H, None)
    Wp = solve(Hp, mask)
    np.testing.assert_allclose(np.asarray(Wp[:, :4]), np.asarray(W), atol=1e-7)
    assert np.all(np.asarray(Wp[:, 4:]) == 0)


def test_per_user_noise_and_batch_shapes():
    H = channels(6, 3, 5, seed=10).reshape(2, 3, 3, 5)
    s2 = jnp.broadcast_to(jnp.asarray([0.1, 0.2, 0.4]), (2, 3, 3))  # per user (..., K)
    W = jb.wmmse(H, 2.0, s2)
    assert W.shape == H.shape
    # Scaling user k's channel by 1/sqrt(s2_k) with unit noise is the same problem.
    W1 = jb.wmmse(H / jnp.sqrt(s2)[..., None], 2.0, 1.0)
    np.testing.assert_allclose(np.asarray(W), np.asarray(W1), atol=1e-9)


def test_bad_inputs_raise_value_errors():
    H = channels(2, 3, 4)
    with pytest.raises(ValueError, match="utility"):
        jb.sca(H, 1.0, SIGMA2, "xx")
    with pytest.raises(ValueError, match="H must be a complex"):
        jb.wmmse(jnp.ones((2, 3, 4)), 1.0)
    with pytest.raises(ValueError, match="tol"):
        jb.wmmse(H, 1.0, tol=0.0)
    with pytest.raises(ValueError, match="mask"):
        jb.maxmin_exact(H, 1.0, mask=jnp.ones((2, 4), bool))
    with pytest.raises(ValueError, match="P must be"):
        jb.sca(H, jnp.ones(5), SIGMA2, "sr")
