"""The classical ladder (#36): WMMSE at a fixed budget and the EE power search, against independent code."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("k", [0, 1, 3, 7])
def test_fixed_budget_wmmse_equals_k_manual_steps(k):
    H = jb.rayleigh(jax.random.key(k), (5,), 4, 4, dtype=jnp.complex128)
    P, s2 = jnp.linspace(0.5, 4.0, 5), 0.05
    state = jb.wmmse_init(H, P, s2)
    for _ in range(k):
        state = jb.wmmse_step(state, H, P, s2, tol=1e-30)
    manual = jb.solvers.wmmse_beams(state, H, s2)
    W = jb.wmmse_fixed(H, P, s2, k)
    chex.assert_shape(W, (5, 4, 4))
    chex.assert_trees_all_close(W, manual, rtol=1e-9, atol=1e-12)
    if k == 0:
        chex.assert_trees_all_close(W, jb.rzf(H, P, s2), rtol=1e-9, atol=1e-12)


def test_fixed_budget_wmmse_climbs_towards_the_converged_solver():
    H = jb.rayleigh(jax.random.key(1), (64,), 8, 8)
    sr = [float(jnp.mean(jb.sum_rate(H, jb.wmmse_fixed(H, 1.0, 0.01, k), 0.01))) for k in (0, 2, 10, 50)]
    full = float(jnp.mean(jb.sum_rate(H, jb.wmmse(H, 1.0, 0.01, tol=1e-6), 0.01)))
    assert sr == sorted(sr) and sr[-1] <= full * 1.001
    jitted = jax.jit(lambda H: jb.wmmse_fixed(H, 1.0, 0.01, 3))(H)
    chex.assert_trees_all_close(jitted, jb.wmmse_fixed(H, 1.0, 0.01, 3), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="iterations must be an int >= 0"):
        jb.wmmse_fixed(H, 1.0, 0.01, -1)


@pytest.mark.parametrize("direction", ["rzf", "zf", "mrt", "wmmse"])
def test_power_search_is_the_best_of_a_brute_force_grid(direction):
    """Against a Python loop over the grid, each level's direction from the public precoders, EE by numpy."""
    K, N, s2, Pc = 4, 8, 0.1, 0.5
    H = jb.rayleigh(jax.random.key(2), (32,), K, N)
    P = jnp.full((32,), 3.0)
    W, p = jb.power_search(H, P, s2, Pc, direction=direction, wmmse_iterations=2, return_power=True)
    make = {"rzf": lambda p: jb.rzf(H, p, s2), "zf": lambda p: jb.zf(H, p), "mrt": lambda p: jb.mrt(H, p),
            "wmmse": lambda p: jb.wmmse_fixed(H, p, s2, 2)}[direction]  # fmt: skip
    Hn = np.asarray(H, np.complex128)

    def ee(W):
        G2 = np.abs(np.einsum("bkn,bin->bki", np.conj(Hn), np.asarray(W, np.complex128))) ** 2
        sig = np.einsum("bkk->bk", G2)
        rate = np.sum(np.log2(1 + sig / (G2.sum(-1) - sig + s2)), -1)
        return rate / (np.sum(np.abs(np.asarray(W, np.complex128)) ** 2, (-2, -1)) + Pc)

    grid = np.stack([ee(make(P * 2 ** (-j / 2))) for j in range(13)])
    np.testing.assert_allclose(ee(W), grid.max(0), rtol=1e-4)
    np.testing.assert_allclose(np.asarray(p), 3.0 * 2 ** (-grid.argmax(0) / 2), rtol=1e-5)
    assert np.all(ee(W) >= grid[0] * (1 - 1e-5))  # never below full power
    assert np.mean(grid.argmax(0) > 0) > 0.5  # at P = 3 W the EE optimum spends less than the budget


def test_power_search_arguments():
    H = jb.rayleigh(jax.random.key(3), (4,), 2, 4)
    bad = [({"direction": "bf"}, "direction must be one of"), ({"levels": 0}, "levels must be"),
           ({"ratio": 1.5}, "ratio must be a number in"), ({"utility": "x"}, "utility must be one of")]  # fmt: skip
    for kw, match in bad:
        with pytest.raises(ValueError, match=match):
            jb.power_search(H, 1.0, **kw)
    chex.assert_trees_all_close(jb.power_search(H, 1.0, utility="sr"), jb.rzf(H, 1.0, 0.1), rtol=1e-5, atol=1e-6)


@pytest.mark.usefixtures("x64")
def test_ee_scale_finds_the_best_power_on_a_fixed_direction():
    """Against a dense numpy grid of 4,001 scales on the same direction (per-user noise, a mask, P = 3 W)."""
    K, N, Pc = 4, 8, 0.5
    H = jb.rayleigh(jax.random.key(4), (32,), K, N, dtype=jnp.complex128)
    s2 = jnp.asarray([0.1, 0.05, 0.2, 0.1])
    mask = jnp.ones((32, K), bool).at[:4, 3].set(False)
    W0 = jb.rzf(H, 3.0, s2, mask=mask)
    W, t = jb.ee_scale(H, W0, s2, Pc, mask=mask, return_scale=True)
    chex.assert_shape(W, (32, K, N))
    chex.assert_shape(t, (32,))
    chex.assert_trees_all_close(W, W0 * jnp.sqrt(t)[:, None, None], rtol=1e-12)
    Hn, Wn, m = np.asarray(H), np.asarray(W0), np.asarray(mask)

    def ee(scale):  # (S,) scales -> (S, 32), numpy
        G2 = np.abs(np.einsum("bkn,bin->bki", np.conj(Hn), Wn)) ** 2 * m[:, None, :]
        sig = np.einsum("bkk->bk", G2)
        sc = scale[:, None, None]
        rate = np.sum(m * np.log2(1 + sc * sig / (sc * (G2.sum(-1) - sig) + np.asarray(s2))), -1)
        return rate / (scale[:, None] * np.sum(np.abs(Wn) ** 2, (-2, -1)) + Pc)

    grid = np.exp(np.linspace(np.log(2.0**-12), 0.0, 4001))
    best = ee(grid).max(0)
    found = np.asarray(jb.energy_efficiency(H, W, s2, Pc, mask))
    np.testing.assert_allclose(found, best, rtol=1e-6)  # the grid's best, to its resolution
    assert np.all(found >= ee(np.ones(1))[0] * (1 - 1e-12))  # never below the direction at full power
    assert np.mean(np.asarray(t) < 0.9) > 0.5  # at 3 W the optimum spends less than the budget
    for kw, match in (({"steps": 0}, "steps must be"), ({"t_min": 1.0}, "t_min must be a number in")):
        with pytest.raises(ValueError, match=match):
            jb.ee_scale(H, W0, s2, Pc, **kw)


@pytest.mark.usefixtures("x64")
def test_rzf_ee_alternates_power_and_regulariser_like_numpy():
    """Pass 2 against numpy: RZF (eq. 5, N x N form) regularised at pass 1's power, then a 4,001-point grid."""
    K, N, s2, Pc, P = 3, 6, 0.1, 0.5, 2.0
    H = jb.rayleigh(jax.random.key(5), (8,), K, N, dtype=jnp.complex128)
    W1 = jb.rzf_ee(H, P, s2, Pc, passes=1)
    chex.assert_trees_all_close(W1, jb.ee_scale(H, jb.rzf(H, P, s2), s2, Pc), rtol=1e-12)
    W2, p2 = jb.rzf_ee(H, P, s2, Pc, passes=2, return_power=True)
    chex.assert_shape((W2, p2), ((8, K, N), (8,)))
    _, p1 = jb.rzf_ee(H, P, s2, Pc, passes=1, return_power=True)
    grid = np.exp(np.linspace(np.log(2.0**-12), 0.0, 4001))
    for b in range(8):
        h = np.asarray(H[b])  # row k is h_k (gains h_k^H w_i); row k of W is w_k
        A = s2 * np.eye(N) + (float(p1[b]) / K) * sum(np.outer(h[k], np.conj(h[k])) for k in range(K))
        V = np.stack([np.linalg.solve(A, h[k]) for k in range(K)])
        V = np.sqrt(P / K) * V / np.linalg.norm(V, axis=1, keepdims=True)  # full power P, regularised at p1

        def ee(scale, h=h, V=V):
            G2 = np.abs(np.conj(h) @ (np.sqrt(scale) * V).T) ** 2
            sig = np.diag(G2)
            return np.sum(np.log2(1 + sig / (G2.sum(1) - sig + s2))) / (scale * P + Pc)

        np.testing.assert_allclose(float(jb.energy_efficiency(H[b], W2[b], s2, Pc)), max(map(ee, grid)), rtol=1e-6)
    with pytest.raises(ValueError, match="passes must be"):
        jb.rzf_ee(H, P, passes=0)
