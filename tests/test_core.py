"""The functional core against independent float64 numpy loops, closed forms and finite differences."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam.core.tokenize import dft_matrix


def crandn(rng, *shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)


# ----------------------------------------------------------------------------- independent references
def np_sinr(H, W, sigma2):
    """One sample: loops over users, eq. 2's SINR. sigma2 scalar or (K,)."""
    K = H.shape[0]
    s2 = np.broadcast_to(np.asarray(sigma2, float), (K,))
    out = np.zeros(K)
    for k in range(K):
        sig = abs(np.vdot(H[k], W[k])) ** 2  # vdot conjugates its first argument: h_k^H w_k
        inter = sum(abs(np.vdot(H[k], W[i])) ** 2 for i in range(K) if i != k)
        out[k] = sig / (inter + s2[k])
    return out


def np_utils(H, W, sigma2, Pc=0.5, mask=None):
    K = H.shape[0]
    active = [k for k in range(K) if mask is None or mask[k]]
    Ha, Wa = H[active], W[active]
    s2 = np.broadcast_to(np.asarray(sigma2, float), (K,))[active]
    r = np.log2(1 + np_sinr(Ha, Wa, s2))
    power = sum(np.linalg.norm(Wa[i]) ** 2 for i in range(len(active)))
    return r.sum(), r.min(), r.sum() / (power + Pc)


# ------------------------------------------------------------------------------------------- utilities
@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("per_user_noise", [False, True])
def test_utilities_match_numpy_loops(per_user_noise):
    rng = np.random.default_rng(0)
    B, K, N = 7, 5, 4
    H, W = crandn(rng, B, K, N), crandn(rng, B, K, N)
    sigma2 = rng.uniform(0.05, 0.5, (B, K)) if per_user_noise else 0.1
    s2 = sigma2 if per_user_noise else np.full((B, K), 0.1)
    got = {name: np.asarray(getattr(jb, name)(H, W, sigma2)) for name in ("sinr", "rates", "sum_rate", "min_rate")}
    ee = np.asarray(jb.energy_efficiency(H, W, sigma2, Pc=0.3))
    for b in range(B):
        np.testing.assert_allclose(got["sinr"][b], np_sinr(H[b], W[b], s2[b]), rtol=1e-12)
        np.testing.assert_allclose(got["rates"][b], np.log2(1 + np_sinr(H[b], W[b], s2[b])), rtol=1e-12)
        sr, mr, e = np_utils(H[b], W[b], s2[b], Pc=0.3)
        np.testing.assert_allclose([got["sum_rate"][b], got["min_rate"][b], ee[b]], [sr, mr, e], rtol=1e-12)
    for name, u in (("sr", got["sum_rate"]), ("mr", got["min_rate"]), ("ee", None)):
        ref = jb.utility(name, H, W, sigma2, Pc=0.3)
        np.testing.assert_allclose(ref, u if u is not None else ee, rtol=1e-12)


def test_shapes_and_dtypes_any_batch_shape():
    key = jax.random.key(1)
    H = jb.rayleigh(key, (2, 3), 4, 6)
    W = jb.rzf(H, 1.0, 0.1)
    chex.assert_shape(H, (2, 3, 4, 6))
    chex.assert_type([H, W], jnp.complex64)
    chex.assert_shape([jb.sinr(H, W), jb.rates(H, W)], (2, 3, 4))
    chex.assert_shape([jb.sum_rate(H, W), jb.min_rate(H, W), jb.energy_efficiency(H, W)], (2, 3))
    chex.assert_type([jb.sum_rate(H, W), jb.min_rate(H, W), jb.energy_efficiency(H, W)], jnp.float32)
    chex.assert_shape(jb.user_tokens(H), (2, 3, 4, 12))
    chex.assert_shape(jb.antenna_tokens(H), (2, 3, 4, 6, 2))
    # one unbatched sample works too
    chex.assert_shape(jb.sum_rate(H[0, 0], W[0, 0]), ())


@pytest.mark.usefixtures("x64")
def test_per_sample_P_and_sigma2():
    rng = np.random.default_rng(1)
    H = crandn(rng, 3, 4, 6)
    P = np.array([1.0, 2.0, 3.0])
    sigma2 = np.array([[0.1], [0.2], [0.3]])  # per sample: (B, 1) (the noise rule of jaxbeam.core._checks)
    W = jb.rzf(H, P, sigma2)
    np.testing.assert_allclose(jb.transmit_power(W), P, rtol=1e-12)
    sr = jb.sum_rate(H, W, sigma2)
    for b in range(3):
        s2 = sigma2[b, 0]
        np.testing.assert_allclose(sr[b], jb.sum_rate(H[b], jb.rzf(H[b], P[b], s2), s2), rtol=1e-12)


def test_performance_eq31():
    np.testing.assert_allclose(jb.performance(jnp.array([1.0, 3.0]), jnp.array([2.0, 2.0])), 100.0)
    np.testing.assert_allclose(jb.performance(jnp.array([1.0, 2.0]), jnp.array([4.0, 4.0])), 37.5)
    with pytest.raises(ValueError, match="u_model"):
        jb.performance(jnp.ones(3), jnp.ones(4))


# ---------------------------------------------------------------------------------------------- gradients
@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("name", jb.TASKS)
def test_utility_gradients_through_gpa_match_finite_differences(name):
    rng = np.random.default_rng(2)
    K, N = 3, 4
    H = jnp.asarray(crandn(rng, K, N))
    X0 = rng.standard_normal((K, N, 2))
    P = 2.0

    def f(X):
        W = jb.gpa(X[..., 0] + 1j * X[..., 1], P)
        return jb.utility(name, H, W, 0.1)

    g = np.asarray(jax.grad(f)(jnp.asarray(X0)))
    eps = 1e-6
    fd = np.zeros_like(X0)
    for idx in np.ndindex(X0.shape):
        d = np.zeros_like(X0)
        d[idx] = eps
        fd[idx] = (f(X0 + d) - f(X0 - d)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", jb.TASKS)
def test_gradients_finite_at_zero_beams(name):
    H = jb.rayleigh(jax.random.key(3), (2,), 3, 4)

    def f(W):
        return jb.utility(name, H, jb.gpa(W, 1.0), 0.1).sum()

    g = jax.grad(f)(jnp.zeros((2, 3, 4), jnp.complex64))
    assert jnp.all(jnp.isfinite(g.real)) and jnp.all(jnp.isfinite(g.imag))
    g2 = jax.grad(lambda W: jb.sum_rate(H, jb.project_power(W, 1.0), 0.1).sum())(jnp.zeros((2, 3, 4), jnp.complex64))
    assert jnp.all(jnp.isfinite(g2.real))


# -------------------------------------------------------------------------------------------------- power
@pytest.mark.usefixtures("x64")
def test_gpa_is_eq15_both_branches():
    rng = np.random.default_rng(4)
    small = crandn(rng, 3, 4)
    small *= 0.7 / np.linalg.norm(small)  # ||W||_F^2 = 0.49 <= 1: scaled by sqrt(P)
    large = crandn(rng, 3, 4) * 3.0  # ||W||_F^2 > 1: normalised to power P
    P = 2.5
    np.testing.assert_allclose(jb.gpa(small, P), np.sqrt(P) * small, rtol=1e-13)
    np.testing.assert_allclose(jb.gpa(large, P), np.sqrt(P / np.linalg.norm(large) ** 2) * large, rtol=1e-13)
    exactly_one = small / np.linalg.norm(small)
    np.testing.assert_allclose(jb.gpa(exactly_one, P), np.sqrt(P) * exactly_one, rtol=1e-13)
    # per sample P, and a batch mixing both branches
    W = np.stack([small, large])
    out = jb.gpa(W, np.array([1.0, 3.0]))
    np.testing.assert_allclose(out[0], small, rtol=1e-13)
    np.testing.assert_allclose(np.linalg.norm(out[1]) ** 2, 3.0, rtol=1e-13)


@pytest.mark.usefixtures("x64")
def test_project_power_is_the_euclidean_projection():
    rng = np.random.default_rng(5)
    P = 1.5
    inside = crandn(rng, 3, 4)
    inside *= 0.5 / np.linalg.norm(inside)
    np.testing.assert_allclose(jb.project_power(inside, P), inside, rtol=1e-14)
    X = crandn(rng, 3, 4) * 2
    Z = np.asarray(jb.project_power(X, P))
    np.testing.assert_allclose(np.linalg.norm(Z) ** 2, P, rtol=1e-12)
    # variational inequality of the projection: Re<X - Z, Y - Z> <= 0 for every feasible Y
    for _ in range(50):
        Y = crandn(rng, 3, 4)
        Y *= np.sqrt(P) * rng.uniform() / np.linalg.norm(Y)
        assert np.real(np.vdot(X - Z, Y - Z)) <= 1e-12


def np_balanced_powers(H, W, P, sigma2):
    """One sample: the Perron eigenvector of the extended coupling matrix (Schubert & Boche 2004)."""
    K = H.shape[0]
    U = W / np.linalg.norm(W, axis=-1, keepdims=True)
    A = np.array([[abs(np.vdot(H[k], U[i])) ** 2 for i in range(K)] for k in range(K)])
    D = np.diag(1.0 / np.diag(A))
    Psi = A - np.diag(np.diag(A))
    s = np.full(K, sigma2)
    X = np.zeros((K + 1, K + 1))
    X[:K, :K], X[:K, K] = D @ Psi, D @ s
    X[K, :K], X[K, K] = np.ones(K) @ D @ Psi / P, np.ones(K) @ D @ s / P
    vals, vecs = np.linalg.eig(X)
    v = np.real(vecs[:, np.argmax(np.real(vals))])
    return v[:K] / v[K], 1.0 / np.max(np.real(vals))  # powers, balanced SINR


@pytest.mark.usefixtures("x64")
def test_maxmin_power_is_the_perron_vector_and_balances_the_sinrs():
    rng = np.random.default_rng(13)
    H, W0 = crandn(rng, 3, 5, 8), crandn(rng, 3, 5, 8)
    P, s2 = np.array([1.0, 2.0, 0.5]), 0.1
    W = np.asarray(jb.maxmin_power(H, W0, P, s2, num_iter=200))
    chex.assert_shape(W, (3, 5, 8))
    for b in range(3):
        p_ref, gamma = np_balanced_powers(H[b], W0[b], P[b], s2)
        np.testing.assert_allclose(np.linalg.norm(W[b], axis=-1) ** 2, p_ref, rtol=1e-9)
        np.testing.assert_allclose(np_sinr(H[b], W[b], s2), gamma, rtol=1e-9)  # every user at gamma
        # directions kept: w_k parallel to the input row
        cos = np.abs(np.sum(np.conj(W[b]) * W0[b], -1)) / np.linalg.norm(W[b], axis=-1) / np.linalg.norm(W0[b], axis=-1)
        np.testing.assert_allclose(cos, 1.0, rtol=1e-12)


@pytest.mark.usefixtures("x64")
def test_maxmin_power_on_rzf_is_near_the_exact_maxmin_and_keeps_the_optimum():
    H = jb.rayleigh(jax.random.key(3), (256,), 6, 12)
    opt = jb.min_rate(H, jb.maxmin_exact(H, 1.0, 0.1), 0.1)
    rzf = jb.rzf(H, 1.0, 0.1)
    bal = jb.maxmin_power(H, rzf, 1.0, 0.1)
    perf = float(jb.performance(jb.min_rate(H, bal, 0.1), opt))
    assert perf >= 99.0 and float(jb.performance(jb.min_rate(H, rzf, 0.1), opt)) < 90.0
    W_opt = jb.maxmin_exact(H[:8], 1.0, 0.1)
    np.testing.assert_allclose(jb.maxmin_power(H[:8], W_opt, 1.0, 0.1, num_iter=100), W_opt, atol=1e-6)


def test_maxmin_power_masks_users_and_has_finite_gradients():
    rng = np.random.default_rng(14)
    H, W0 = jnp.asarray(crandn(rng, 2, 4, 6), jnp.complex64), jnp.asarray(crandn(rng, 2, 4, 6), jnp.complex64)
    mask = jnp.array([[True, True, False, True], [True, True, True, True]])
    W = jb.maxmin_power(H, W0, 1.0, 0.1, mask=mask)
    chex.assert_type(W, jnp.complex64)
    assert float(jnp.abs(W[0, 2]).max()) == 0.0
    np.testing.assert_allclose(jb.transmit_power(W), [1.0, 1.0], rtol=1e-5)
    # the masked sample equals the 3-user problem without the absent user
    keep = jnp.array([0, 1, 3])
    np.testing.assert_allclose(jb.maxmin_power(H[0, keep], W0[0, keep], 1.0, 0.1), W[0, keep], rtol=1e-5, atol=1e-7)
    g = jax.grad(lambda W0: jb.min_rate(H, jb.maxmin_power(H, W0, 1.0, 0.1, mask=mask), 0.1, mask=mask).sum())(W0)
    assert bool(jnp.all(jnp.isfinite(g)))
    with pytest.raises(ValueError, match="num_iter"):
        jb.maxmin_power(H, W0, 1.0, num_iter=0)


# ----------------------------------------------------------------------------------------------- precoders
@pytest.mark.usefixtures("x64")
def test_precoders_at_exactly_full_power_and_zf_nulls_interference():
    rng = np.random.default_rng(6)
    H = crandn(rng, 4, 5, 8)
    for W in (jb.mrt(H, 2.0), jb.zf(H, 2.0), jb.rzf(H, 2.0, 0.1)):
        np.testing.assert_allclose(jb.transmit_power(W), 2.0, rtol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(W, axis=-1) ** 2, 2.0 / 5, rtol=1e-12)  # P/K per beam
    G = np.asarray(jb.gains(H, jb.zf(H, 2.0)))
    off = G * (1 - np.eye(5))
    assert np.abs(off).max() < 1e-12 * np.abs(G).max()
    # MRT beams point along the channels: h_k^H w_k = ||h_k|| sqrt(P/K)
    Gm = np.asarray(jb.gains(H, jb.mrt(H, 2.0)))
    np.testing.assert_allclose(np.diagonal(Gm, axis1=1, axis2=2), np.linalg.norm(H, axis=-1) * np.sqrt(2.0 / 5))


@pytest.mark.usefixtures("x64")
def test_rzf_matches_ref002_eq5_in_N_dimensions():
    rng = np.random.default_rng(7)
    K, N, P, s2 = 6, 4, 2.0, 0.3  # K > N: RZF exists where ZF does not
    H = crandn(rng, K, N)
    A = s2 * np.eye(N) + (P / K) * sum(np.outer(H[i], H[i].conj()) for i in range(K))
    ref = np.zeros((K, N), complex)
    for k in range(K):
        v = np.linalg.solve(A, H[k])
        ref[k] = np.sqrt(P / K) * v / np.linalg.norm(v)
    np.testing.assert_allclose(jb.rzf(H, P, s2), ref, rtol=1e-10, atol=1e-12)


def test_zf_raises_when_K_exceeds_N_and_rzf_works():
    H = jb.rayleigh(jax.random.key(0), (2,), 6, 4)
    with pytest.raises(ValueError, match="K <= N"):
        jb.zf(H, 1.0)
    assert jnp.all(jnp.isfinite(jb.sum_rate(H, jb.rzf(H, 1.0, 0.1))))


def test_rzf_beats_zf_and_mrt_on_average():
    H = jb.rayleigh(jax.random.key(8), (500,), 6, 12)
    sr = {f.__name__: jb.sum_rate(H, f(H, 1.0), 0.1).mean() for f in (jb.mrt, jb.zf)}
    sr_rzf = jb.sum_rate(H, jb.rzf(H, 1.0, 0.1), 0.1).mean()
    assert sr_rzf > sr["zf"] > sr["mrt"]


# -------------------------------------------------------------------------------------------------- masks
@pytest.mark.usefixtures("x64")
def test_padding_5_to_9_users_gives_the_same_utilities():
    rng = np.random.default_rng(9)
    B, K, Kpad, N = 4, 5, 9, 12
    H, W = crandn(rng, B, K, N), crandn(rng, B, K, N) * 0.3
    s2 = rng.uniform(0.05, 0.2, (B, K))
    Hp = np.zeros((B, Kpad, N), complex)
    Wp = crandn(rng, B, Kpad, N)  # garbage in the padded beams: must be ignored
    Hp[:, :K], Wp[:, :K] = H, W
    s2p = np.concatenate([s2, np.full((B, Kpad - K), 0.1)], axis=1)
    mask = np.arange(Kpad) < K
    mask = np.broadcast_to(mask, (B, Kpad))
    for name in jb.TASKS:
        np.testing.assert_allclose(
            jb.utility(name, Hp, Wp, s2p, mask=mask), jb.utility(name, H, W, s2), rtol=1e-12, err_msg=name
        )
    np.testing.assert_allclose(jb.rates(Hp, Wp, s2p, mask=mask)[:, :K], jb.rates(H, W, s2), rtol=1e-12)
    assert np.all(np.asarray(jb.rates(Hp, Wp, s2p, mask=mask))[:, K:] == 0)
    # the precoders: padded users get zero beams, real users the unpadded beams
    for f, args in ((jb.mrt, (1.0,)), (jb.zf, (1.0,)), (jb.rzf, (1.0, 0.1))):
        Wpad = np.asarray(f(Hp, *args, mask=mask))
        np.testing.assert_allclose(Wpad[:, :K], f(H, *args), rtol=1e-10, atol=1e-13, err_msg=f.__name__)
        assert np.all(Wpad[:, K:] == 0)
    Wg = np.asarray(jb.gpa(Wp, 1.0, mask=mask))
    np.testing.assert_allclose(Wg[:, :K], jb.gpa(W, 1.0), rtol=1e-12)


# ---------------------------------------------------------------------------------------- jit, vmap, grad
def _public_calls(H, W):
    k = jax.random.key(0)
    return {
        "sinr": lambda H, W: jb.sinr(H, W, 0.1),
        "rates": lambda H, W: jb.rates(H, W, 0.1),
        "sum_rate": lambda H, W: jb.sum_rate(H, W, 0.1),
        "min_rate": lambda H, W: jb.min_rate(H, W, 0.1),
        "energy_efficiency": lambda H, W: jb.energy_efficiency(H, W, 0.1, 0.5),
        "utility": lambda H, W: jb.utility("ee", H, W, 0.1),
        "user_tokens": lambda H, W: jb.user_tokens(H + W),
        "antenna_tokens": lambda H, W: jb.antenna_tokens(H + W),
        "angle_domain": lambda H, W: jb.sum_rate(jb.angle_domain(H), jb.angle_domain(W)),
        "spatial_domain": lambda H, W: jb.sum_rate(H, jb.spatial_domain(W)),
        "gpa": lambda H, W: jb.sum_rate(H, jb.gpa(W, 1.0)),
        "project_power": lambda H, W: jb.sum_rate(H, jb.project_power(W, 1.0)),
        "project_antenna_power": lambda H, W: jb.sum_rate(H, jb.project_antenna_power(W, 0.3)),
        "gpa_antenna": lambda H, W: jb.sum_rate(H, jb.gpa_antenna(W, 0.3)),
        "scale_antenna_power": lambda H, W: jb.sum_rate(H, jb.scale_antenna_power(W, 0.3)),
        "mrt": lambda H, W: jb.sum_rate(H, jb.mrt(H + W, 1.0)),
        "zf": lambda H, W: jb.sum_rate(H, jb.zf(H + W, 1.0)),
        "rzf": lambda H, W: jb.sum_rate(H, jb.rzf(H + W, 1.0, 0.1)),
        "csi_error": lambda H, W: jb.sum_rate(jb.csi_error(k, H, -20.0), W),
        "performance": lambda H, W: jb.performance(jb.sum_rate(H, W), jb.sum_rate(H, H)),
    }


@pytest.mark.parametrize("name", list(_public_calls(None, None)))
def test_jit_vmap_grad_on_every_public_function(name):
    f = _public_calls(None, None)[name]
    H = jb.rayleigh(jax.random.key(10), (3,), 3, 5)
    W = 0.3 * jb.rayleigh(jax.random.key(11), (3,), 3, 5)
    eager = f(H, W)
    chex.assert_trees_all_close(jax.jit(f)(H, W), eager, rtol=2e-5, atol=1e-6)
    if name == "performance":  # a mean over the test set: vmap over samples is not the same quantity
        chex.assert_shape(jax.vmap(f)(H, W), (3,))
    elif name == "csi_error":  # one key per call: vmapped samples draw other errors than a batched call
        chex.assert_tree_all_finite(jax.vmap(f)(H, W))
    else:
        chex.assert_trees_all_close(jax.vmap(f)(H, W), eager, rtol=2e-5, atol=1e-6)
    g = jax.grad(lambda W: jnp.sum(f(H, W)))(W)
    assert jnp.all(jnp.isfinite(g.real)) and jnp.all(jnp.isfinite(g.imag))


# ---------------------------------------------------------------------------------------------- channels
def test_rayleigh_statistics_and_determinism():
    H = jb.rayleigh(jax.random.key(12), (4000,), 4, 8)
    chex.assert_type(H, jnp.complex64)
    assert abs(float(jnp.mean(H.real))) < 0.01 and abs(float(jnp.mean(H.imag))) < 0.01
    np.testing.assert_allclose(float(jnp.mean(jnp.abs(H) ** 2)), 1.0, rtol=0.01)
    np.testing.assert_allclose(float(jnp.var(H.real)), 0.5, rtol=0.02)
    chex.assert_trees_all_equal(H, jb.rayleigh(jax.random.key(12), (4000,), 4, 8))
    with jax.enable_x64(True):
        chex.assert_type(jb.rayleigh(jax.random.key(0), 2, 3, 4, dtype=jnp.complex128), jnp.complex128)
    with pytest.raises(ValueError, match="K"):
        jb.rayleigh(jax.random.key(0), (2,), 0, 4)
    with pytest.raises(ValueError, match="dtype"):
        jb.rayleigh(jax.random.key(0), (2,), 2, 4, dtype=jnp.float32)


@pytest.mark.usefixtures("x64")
def test_csi_error_has_exact_relative_norm():
    H = jb.rayleigh(jax.random.key(13), (50,), 6, 12, dtype=jnp.complex128)
    for mu_db in (-25.0, -19.0):
        E = np.asarray(jb.csi_error(jax.random.key(14), H, mu_db) - H)
        np.testing.assert_allclose(
            np.linalg.norm(E, axis=-1) ** 2, 10 ** (mu_db / 10) * np.linalg.norm(H, axis=-1) ** 2, rtol=1e-10
        )
    per_sample = jnp.linspace(-25.0, -19.0, 50)
    E = np.asarray(jb.csi_error(jax.random.key(14), H, per_sample) - H)
    ratio = np.linalg.norm(E, axis=-1) ** 2 / np.linalg.norm(H, axis=-1) ** 2
    np.testing.assert_allclose(ratio, np.broadcast_to(10 ** (np.asarray(per_sample)[:, None] / 10), ratio.shape))
    # errors are independent of the channel's direction (not, e.g., a scaled copy of h_k)
    cos = np.abs(np.sum(np.conj(E) * np.asarray(H), -1)) / (np.linalg.norm(E, axis=-1) * np.linalg.norm(H, axis=-1))
    assert cos.mean() < 0.5


def test_tokens_layout():
    H = jnp.array([[1 + 2j, 3 - 4j]])  # K = 1, N = 2
    np.testing.assert_array_equal(jb.user_tokens(H), [[1, 3, 2, -4]])
    np.testing.assert_array_equal(jb.antenna_tokens(H), [[[1, 2], [3, -4]]])


@pytest.mark.usefixtures("x64")
def test_angle_domain_is_the_orthonormal_dft_and_keeps_every_gain():
    """Paper 003 eq. 18 against numpy's FFT; the map is unitary, so rates and powers are the same."""
    H = jb.rayleigh(jax.random.key(15), (4,), 3, 7, dtype=jnp.complex128)
    W = 0.4 * jb.rayleigh(jax.random.key(16), (4,), 3, 7, dtype=jnp.complex128)
    Ha, Wa = jb.angle_domain(H), jb.angle_domain(W)
    np.testing.assert_allclose(Ha, np.fft.fft(np.asarray(H), axis=-1, norm="ortho"), atol=1e-12)
    np.testing.assert_allclose(jb.spatial_domain(Ha), H, atol=1e-12)
    np.testing.assert_allclose(jb.spatial_domain(Wa), np.fft.ifft(np.asarray(Wa), axis=-1, norm="ortho"), atol=1e-12)
    np.testing.assert_allclose(jb.gains(Ha, Wa), jb.gains(H, W), atol=1e-12)
    np.testing.assert_allclose(jb.sum_rate(Ha, Wa, 0.1), jb.sum_rate(H, W, 0.1), rtol=1e-12)
    np.testing.assert_allclose(jb.transmit_power(Wa), jb.transmit_power(W), rtol=1e-12)
    F = dft_matrix(7, dtype=jnp.complex128)
    np.testing.assert_allclose(F @ F.conj().T, np.eye(7), atol=1e-12)  # unitary
    for N in (1000, 4096):  # the phase is reduced mod N in integers: accurate in float32 at any N
        F32 = np.asarray(dft_matrix(N, dtype=jnp.complex64))[:3, -5:]
        n, m = np.meshgrid(np.arange(3), np.arange(N - 5, N), indexing="ij")
        np.testing.assert_allclose(F32, np.exp(-2j * np.pi * n * m / N) / np.sqrt(N), atol=1e-6 / np.sqrt(N))


@pytest.mark.usefixtures("x64")
def test_angle_domain_with_padded_antennas_is_each_samples_own_dft():
    H = np.asarray(jb.rayleigh(jax.random.key(17), (3,), 2, 6, dtype=jnp.complex128))
    counts = [6, 4, 1]
    amask = np.arange(6)[None, :] < np.array(counts)[:, None]
    Hp = np.where(amask[:, None, :], H, 0)
    Ha = np.asarray(jb.angle_domain(Hp, amask))
    for b, n in enumerate(counts):
        np.testing.assert_allclose(Ha[b, :, :n], np.fft.fft(H[b, :, :n], axis=-1, norm="ortho"), atol=1e-12)
        assert np.all(Ha[b, :, n:] == 0)
        np.testing.assert_allclose(jb.spatial_domain(Ha, amask)[b], Hp[b], atol=1e-12)
    with pytest.raises(ValueError, match=r"antenna_mask must have shape \(\.\.\., N=6\)"):
        jb.angle_domain(Hp, amask[:, :5])
    with pytest.raises(TypeError, match="antenna_mask must be a boolean"):
        jb.angle_domain(Hp, amask.astype(int))


# -------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda H, W: jb.sum_rate(H.real, W), "H must be a complex"),
        (lambda H, W: jb.sum_rate(H, W.real), "W must be a complex"),
        (lambda H, W: jb.sum_rate(H[0, 0], W), "K, N"),
        (lambda H, W: jb.sinr(H, W[:, :2]), "H and W must agree"),
        (lambda H, W: jb.sinr(H, W[..., :3]), "H and W must agree"),
        (lambda H, W: jb.sinr(H, W, jnp.ones((2, 5))), "sigma2"),
        (lambda H, W: jb.sinr(H, W, 0.1 + 0j), "sigma2 must be real"),
        (lambda H, W: jb.sinr(H, W, mask=jnp.ones((2, 3))), "mask must be a boolean"),
        (lambda H, W: jb.sinr(H, W, mask=jnp.ones((2, 4), bool)), "mask must have shape"),
        (lambda H, W: jb.gpa(W, jnp.ones(5)), "P must be"),
        (lambda H, W: jb.rzf(H.real, 1.0), "H must be a complex"),
        (lambda H, W: jb.energy_efficiency(H, W, Pc=jnp.ones(7)), "Pc"),
        (lambda H, W: jb.user_tokens(H.real), "H must be a complex"),
        (lambda H, W: jb.utility("se", H, W), "name must be one of"),
        (lambda H, W: jb.csi_error(jax.random.key(0), H, jnp.ones(3)), "mu_db"),
    ],
)
def test_bad_inputs_raise_at_trace_time(call, match):
    H = jb.rayleigh(jax.random.key(0), (2,), 3, 5)
    W = jb.rzf(H, 1.0, 0.1)
    with pytest.raises(ValueError, match=match):
        call(H, W)
    with pytest.raises(ValueError, match=match):  # raised while tracing, before anything runs
        jax.jit(call).lower(H, W)
