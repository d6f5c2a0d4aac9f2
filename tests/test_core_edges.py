"""The functional core's linear algebra against numpy, and its rules for noise shapes, invalid values and
edge values (issue 14): per-user noise, errors naming the argument, zero beams instead of NaN, no overflow."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_core import crandn, np_sinr

import jaxbeam as jb
from jaxbeam.core.linalg import gauss_jordan_inverse_bm, hpd_solve


@pytest.mark.usefixtures("x64")
def test_hpd_solve_matches_numpy():
    rng = np.random.default_rng(15)
    X = crandn(rng, 5, 7, 7)
    A = X @ np.conj(np.swapaxes(X, -1, -2)) + 0.01 * np.eye(7)
    B = crandn(rng, 5, 7, 3)
    np.testing.assert_allclose(hpd_solve(jnp.asarray(A), jnp.asarray(B)), np.linalg.solve(A, B), rtol=1e-8)
    with pytest.raises(ValueError, match="square"):
        hpd_solve(jnp.ones((3, 4)), jnp.ones((3, 1)))


@pytest.mark.usefixtures("x64")
def test_optimal_structure_matches_numpy_and_rzf():
    from jaxbeam.core.precoders import optimal_structure

    rng = np.random.default_rng(17)
    K, N = 4, 6
    H = crandn(rng, 3, K, N)
    lam, p = rng.uniform(0.2, 5.0, (3, K)), rng.uniform(0.0, 1.0, (3, K))
    W = np.asarray(optimal_structure(jnp.asarray(H), lam, p))
    for b in range(3):  # N x N inverse, one user at a time
        A = np.eye(N) + sum(lam[b, i] * np.outer(H[b, i], H[b, i].conj()) for i in range(K))
        for k in range(K):
            v = np.linalg.solve(A, H[b, k])
            np.testing.assert_allclose(W[b, k], np.sqrt(p[b, k]) * v / np.linalg.norm(v), rtol=1e-9, atol=1e-12)
    P, sigma2 = 2.0, 0.1  # RZF: lambda = P / (K sigma2), p = P / K
    W = optimal_structure(jnp.asarray(H), np.full((3, K), P / (K * sigma2)), np.full((3, K), P / K))
    np.testing.assert_allclose(W, jb.rzf(jnp.asarray(H), P, sigma2), atol=1e-12)
    mask = np.array([True, False, True, True])  # an absent user: zero beam, the others as without it
    Wm = optimal_structure(jnp.asarray(H), lam, p, mask=mask)
    W3 = optimal_structure(jnp.asarray(H[:, mask]), lam[:, mask], p[:, mask])
    np.testing.assert_allclose(np.asarray(Wm)[:, mask], W3, atol=1e-12)
    assert np.all(np.asarray(Wm)[:, 1] == 0)
    with pytest.raises(ValueError, match=r"lam must be real with shape \(\.\.\., K=4\)"):
        optimal_structure(jnp.asarray(H), np.ones((3, 3)), p)


@pytest.mark.usefixtures("x64")
def test_batch_minor_inverse_matches_numpy():
    rng = np.random.default_rng(16)
    X = crandn(rng, 2, 3, 6, 6)
    A = X @ np.conj(np.swapaxes(X, -1, -2)) + 0.01 * np.eye(6)
    A_bm = np.moveaxis(A.reshape(-1, 6, 6), 0, -1)  # (K, K, batch)
    inv = jax.jit(gauss_jordan_inverse_bm)(jnp.asarray(A_bm))
    chex.assert_shape(inv, (6, 6, 6))
    np.testing.assert_allclose(np.moveaxis(np.asarray(inv), -1, 0), np.linalg.inv(A.reshape(-1, 6, 6)), atol=1e-9)
    with pytest.raises(ValueError, match=r"\(K, K, B\)"):
        gauss_jordan_inverse_bm(jnp.ones((3, 4, 2)))


# ------------------------------------------------------------------ issue 14: noise rule, values, edges
def test_per_user_noise_is_read_per_user_when_B_equals_K():
    """Defect 3: sigma2 (K,) with B == K was read per sample (SINR off by up to 34); B != K was rejected."""
    from jaxbeam.solvers import _common

    rng = np.random.default_rng(14)
    s2 = np.array([0.05, 0.1, 0.4, 1.0])
    for B in (4, 3):  # B == K == 4, and B != K
        H, W = crandn(rng, B, 4, 6), crandn(rng, B, 4, 6)
        got = np.asarray(jb.sinr(H.astype(np.complex64), W.astype(np.complex64), s2.astype(np.float32)))
        want = np.stack([np_sinr(H[b], W[b], s2) for b in range(B)])
        np.testing.assert_allclose(got, want, rtol=1e-5)
        Hn = np.asarray(_common.prepare(jnp.asarray(H, jnp.complex64), 1.0, s2, None)[0])  # every solver's entry
        np.testing.assert_allclose(Hn, H / np.sqrt(s2)[:, None], rtol=1e-5)
        # per user in maxmin_power: the balanced SINRs are equal with the per-user noise
        Wb = jb.maxmin_power(H.astype(np.complex64), W.astype(np.complex64), 1.0, s2, num_iter=200)
        s = np.stack([np_sinr(H[b], np.asarray(Wb[b]), s2) for b in range(B)])
        np.testing.assert_allclose(s, s[:, :1] * np.ones((1, 4)), rtol=1e-3)
    # per sample is (B, 1); a flat (B,) with B != K is an error naming sigma2
    H, W = crandn(rng, 3, 4, 6), crandn(rng, 3, 4, 6)
    per_sample = np.array([[0.1], [0.2], [0.3]])
    np.testing.assert_allclose(
        jb.sinr(H, W, per_sample), np.stack([np_sinr(H[b], W[b], per_sample[b, 0]) for b in range(3)]), rtol=1e-5
    )
    for f in (lambda s: jb.sinr(H, W, s), lambda s: jb.rzf(H, 1.0, s), lambda s: jb.maxmin_power(H, W, 1.0, s)):
        with pytest.raises(ValueError, match=r"sigma2 must broadcast .* per sample \(\.\.\., 1\)"):
            f(per_sample[:, 0])


@pytest.mark.usefixtures("x64")
def test_rzf_with_per_user_noise_is_the_optimal_structure_of_the_normalised_channels():
    from jaxbeam.core.precoders import optimal_structure

    rng = np.random.default_rng(3)
    H, s2, P = crandn(rng, 3, 4, 6), np.array([0.05, 0.1, 0.4, 1.0]), 2.0
    W = jb.rzf(H, P, s2)
    np.testing.assert_allclose(
        W, optimal_structure(H, np.broadcast_to(P / (4 * s2), (3, 4)), np.full((3, 4), P / 4)), atol=1e-10
    )
    np.testing.assert_allclose(jb.rzf(H, P, np.full(4, 0.3)), jb.rzf(H, P, 0.3), atol=1e-12)


@pytest.mark.parametrize(
    "call, arg",
    [
        (lambda H, W: jb.gpa(W, 0.0), "P"),
        (lambda H, W: jb.gpa(W, -1.0), "P"),
        (lambda H, W: jb.project_power(W, np.array([1.0, np.nan, 1.0])), "P"),
        (lambda H, W: jb.mrt(H, np.inf), "P"),
        (lambda H, W: jb.zf(H, -2.0), "P"),
        (lambda H, W: jb.rzf(H, 1.0, -0.1), "sigma2"),
        (lambda H, W: jb.rzf(H, 0.0, 0.1), "P"),
        (lambda H, W: jb.maxmin_power(H, W, 1.0, 0.0), "sigma2"),
        (lambda H, W: jb.sum_rate(H, W, np.nan), "sigma2"),
        (lambda H, W: jb.energy_efficiency(H, W, 0.1, Pc=-0.5), "Pc"),
        (lambda H, W: jb.utility("rate", H, W), "name"),
        (lambda H, W: jb.sum_rate(H.at[0, 1, 2].set(jnp.nan), W), "H"),
        (lambda H, W: jb.sum_rate(H, W.at[2, 0, 0].set(jnp.inf)), "W"),
        (lambda H, W: jb.mrt(H[:, :0], 1.0), "H"),
        (lambda H, W: jb.user_tokens(jnp.ones((3, 4, 5), jnp.int32)), "H"),
        (lambda H, W: jb.csi_error(jax.random.key(0), H, np.nan), "mu_db"),
        (lambda H, W: jb.rayleigh(jax.random.key(0), (3,), 0, 5), "K"),
        (lambda H, W: jb.wmmse(H, -1.0, 0.1), "P"),
        (lambda H, W: jb.wmmse(H, 1.0, 0.1, weights=np.array([1.0, -1.0, 1.0, 1.0])), "weights"),
        (lambda H, W: jb.sca(H, 1.0, 0.0), "sigma2"),
        (lambda H, W: jb.maxmin_exact(H, np.nan, 0.1), "P"),
    ],
)
def test_invalid_concrete_values_raise_naming_the_argument(call, arg):
    H = jb.rayleigh(jax.random.key(5), (3,), 4, 5)
    W = jb.rzf(H, 1.0, 0.1)
    with pytest.raises(ValueError, match=arg):
        call(H, W)


def test_wrong_dtypes_raise_type_errors():
    H = jb.rayleigh(jax.random.key(5), (3,), 4, 5)
    for call, arg in (
        (lambda: jb.sum_rate(H.real, H), "H"),
        (lambda: jb.gpa(H, 1.0 + 0j), "P"),
        (lambda: jb.sinr(H, H, mask=jnp.ones((3, 4), jnp.int32)), "mask"),
    ):
        with pytest.raises(TypeError, match=arg):
            call()


def test_traced_edge_values_give_zero_beams_not_nan():
    """P = 0 (and NaN, negative) traced: zero beams from every precoder, power adapter and solver; sigma2 = 0
    traced: finite beams (the SNR is capped at 1 / eps)."""
    H = jb.rayleigh(jax.random.key(6), (4,), 2, 3)
    P = jnp.array([1.0, 0.0, -1.0, jnp.nan])

    @jax.jit
    def beams(P, s2):
        return {
            "mrt": jb.mrt(H, P),
            "zf": jb.zf(H, P),
            "rzf": jb.rzf(H, P, s2),
            "gpa": jb.gpa(3 * H, P),
            "project_power": jb.project_power(3 * H, P),
            "maxmin_power": jb.maxmin_power(H, H, P, s2),
            "wmmse": jb.wmmse(H, P, s2),
            "sca": jb.sca(H, P, s2, "ee"),
            "maxmin_exact": jb.maxmin_exact(H, P, s2),
        }

    for name, W in beams(P, 0.1).items():
        W = np.asarray(W)
        assert np.all(np.isfinite(W)), name
        np.testing.assert_array_equal(W[1:], 0, err_msg=name)
        assert np.sum(np.abs(W[0]) ** 2) > 0.3, name
    for name, W in beams(jnp.ones(4), jnp.array([[0.1], [0.0], [-1.0], [jnp.nan]])).items():
        assert np.all(np.isfinite(np.asarray(W))), name
        assert np.all(np.asarray(jb.transmit_power(W)) <= 1 + 1e-4), name  # the power budget holds


@pytest.mark.usefixtures("x64")
def test_zf_with_identical_users_is_the_pseudo_inverse_limit():
    """Two identical users (rank-deficient H H^H) gave NaN; now the beams of (H H^H)^+ H at full power."""
    rng = np.random.default_rng(7)
    H = crandn(rng, 2, 3, 5)
    H[:, 2] = H[:, 0]  # users 0 and 2 identical
    D = np.conj(np.swapaxes(np.linalg.pinv(H), -1, -2))  # rows of (H H^H)^+ H
    D = D / np.linalg.norm(D, axis=-1, keepdims=True)
    for dtype, tol in ((np.complex64, 1e-3), (np.complex128, 1e-7)):
        with jax.enable_x64(dtype == np.complex128):
            W = np.asarray(jb.zf(H.astype(dtype), 2.0)).astype(np.complex128)
        assert np.all(np.isfinite(W))
        np.testing.assert_allclose(np.sum(np.abs(W) ** 2, (-2, -1)), 2.0, rtol=1e-5)
        np.testing.assert_allclose(W / np.linalg.norm(W, axis=-1, keepdims=True), D, atol=tol)
        G = np.einsum("bkn,bin->bki", np.conj(H), W)
        np.testing.assert_allclose(G[:, [0, 2], 1], 0, atol=tol)  # user 1 is still nulled towards 0 and 2
        np.testing.assert_allclose(G[:, 1, [0, 2]], 0, atol=tol)


def test_min_rate_with_an_all_false_mask_is_zero():
    H = jb.rayleigh(jax.random.key(8), (3,), 4, 5)
    W = jb.rzf(H, 1.0, 0.1)
    mask = jnp.array([[True, True, False, True], [False] * 4, [True, False, False, False]])
    for f in (jb.min_rate, jax.jit(jb.min_rate)):
        mr = np.asarray(f(H, W, 0.1, mask))
        np.testing.assert_array_equal(mr[1], 0.0)
        r = np.asarray(jb.rates(H, W, 0.1, mask))
        np.testing.assert_allclose(mr[[0, 2]], [r[0, [0, 1, 3]].min(), r[2, 0]], rtol=1e-6)
    np.testing.assert_array_equal(jb.sum_rate(H, W, 0.1, mask)[1], 0.0)
    np.testing.assert_array_equal(jb.energy_efficiency(H, W, 0.1, 0.0, mask)[1], 0.0)  # Pc = 0, no user: 0


def test_performance_with_a_zero_reference():
    with pytest.raises(ValueError, match="u_reference"):
        jb.performance(jnp.ones(3), jnp.array([1.0, -1.0, 0.0]))
    with pytest.raises(ValueError, match="u_model"):
        jb.performance(jnp.ones(0), jnp.ones(0))
    assert np.isnan(jax.jit(jb.performance)(jnp.ones(3), jnp.zeros(3)))  # traced: NaN, documented


def test_norms_do_not_overflow_near_the_float32_range_ends():
    """gpa / project_power / mrt on x 1e30 returned zero beams (||W||^2 overflowed float32)."""
    H = jb.rayleigh(jax.random.key(9), (3,), 4, 5)
    W = 2.0 * H  # outside the unit ball: GPA and the projection are scale-invariant there
    for c in (1e30, 1e-30):
        cs = np.float32(c)
        np.testing.assert_allclose(jb.mrt(H * cs, 2.0), jb.mrt(H, 2.0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(jb.zf(H * cs, 2.0), jb.zf(H, 2.0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(jb.maxmin_power(H, W * cs, 1.0), jb.maxmin_power(H, W, 1.0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(jb.gpa(W * np.float32(1e30), 2.0), jb.gpa(W, 2.0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        jb.project_power(W * np.float32(1e30), 2.0), jb.project_power(W, 2.0), rtol=1e-5, atol=1e-6
    )
    tiny = W * np.float32(1e-30)  # inside the ball: GPA multiplies by sqrt(P), the projection is the identity
    np.testing.assert_allclose(jb.gpa(tiny, 2.0), tiny * np.sqrt(2.0), rtol=1e-6)
    np.testing.assert_allclose(jb.project_power(tiny, 2.0), tiny, rtol=1e-6)
    # RZF's limits: huge channels (SNR -> inf) give ZF, tiny ones (SNR -> 0) give MRT
    np.testing.assert_allclose(jb.rzf(H * np.float32(1e30), 2.0, 0.1), jb.zf(H, 2.0), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(jb.rzf(H * np.float32(1e-30), 2.0, 0.1), jb.mrt(H, 2.0), rtol=1e-3, atol=1e-4)
    # SINRs: the noise is negligible at x 1e30, so they equal the noise-free ratios
    s = np.asarray(jb.sinr(H * np.float32(1e30), W, 0.1))
    np.testing.assert_allclose(s, np.asarray(jb.sinr(H, W, 1e-30)), rtol=1e-4)
    assert np.all(np.isfinite(np.asarray(jb.utility("ee", H, W * np.float32(1e30)))))


def test_empty_batches_give_empty_results():
    H = jb.rayleigh(jax.random.key(10), (0,), 4, 5)
    assert H.shape == (0, 4, 5)
    for out, shape in (
        (jb.sinr(H, H), (0, 4)),
        (jb.sum_rate(H, H), (0,)),
        (jb.min_rate(H, H, mask=jnp.ones((0, 4), bool)), (0,)),
        (jb.energy_efficiency(H, H), (0,)),
        (jb.gpa(H, 1.0), (0, 4, 5)),
        (jb.mrt(H, 1.0), (0, 4, 5)),
        (jb.zf(H, 1.0), (0, 4, 5)),
        (jb.rzf(H, 1.0, 0.1), (0, 4, 5)),
        (jb.user_tokens(H), (0, 4, 10)),
    ):
        assert out.shape == shape
