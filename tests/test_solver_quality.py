"""Label-solver quality and robustness (issue 14): SCA against the global max-min optimum and a dense
WMMSE power grid, WMMSE's default stop against a converged run at high SNR, the fast exact max-min
against bisection, and degenerate inputs / bad parameters for every solver. float32 (the labels' dtype)
unless noted."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb

SIGMA2, PC = 0.1, 0.5


def channels(B, K, N, seed=0, dtype=jnp.complex64):
    return jb.rayleigh(jax.random.key(seed), (B,), K, N, dtype=dtype)


@pytest.fixture(scope="module")
def case_612():
    """64 Rayleigh channels at (6, 12), P = 1: the exact MR optimum and the 50-level WMMSE grid's EE."""
    H = channels(64, 6, 12, seed=11)
    mr_exact = np.asarray(jb.min_rate(H, jax.jit(lambda H: jb.maxmin_exact(H, 1.0, SIGMA2))(H), SIGMA2))
    grid = jnp.arange(1, 51, dtype=jnp.float32) / 50
    ee = lambda p: jb.energy_efficiency(H, jb.wmmse(H, p, SIGMA2, tol=1e-6), SIGMA2, PC)
    ee_grid = np.asarray(jax.jit(lambda g: jnp.max(jax.lax.map(ee, g), 0))(grid))
    return H, mr_exact, ee_grid


class _SCARuns(dict):
    """``[utility, inner_steps]`` -> SCA's utilities on the (6, 12) channels, each solved on first use."""

    def __init__(self, H):
        super().__init__()
        self.H = H

    def __missing__(self, key):
        u, steps = key
        W = jax.jit(lambda H: jb.sca(H, 1.0, SIGMA2, u, PC, inner_steps=steps))(self.H)
        self[key] = np.asarray(jb.utility(u, self.H, W, SIGMA2, PC))
        return self[key]


@pytest.fixture(scope="module")
def sca_runs(case_612):
    return _SCARuns(case_612[0])


def test_wmmse_in_float32_on_path_loss_channels_matches_float64_and_starts_at_rzf(K=8, N=12):
    """Users up to ~35 dB apart (``jb.pathloss``'s defaults, 20 dB at the cell edge) make the K x K Gram
    matrix's diagonal span as much; unequilibrated float32 Gauss-Jordan then made WMMSE oscillate 10-50 %
    below its own RZF start on some samples (mean 3 % below RZF at (8, 12), 5 % below the right answer at
    (12, 12)). Now every sample ends at or above RZF, and the mean matches the same solve in float64 to 1e-4.
    (Convergence is slow there: at (12, 12) 17 % of these samples meet the tol-1e-5 test within the
    500-iteration cap, whose mean is 0.04 % below a 3,000-iteration run's; measured once, not asserted.)"""
    s2 = 0.01
    H = jb.pathloss(jax.random.key(12345), (64,), K, N)
    W = jb.wmmse(H, 1.0, s2, tol=1e-5)
    sr, rzf = (np.asarray(jb.sum_rate(H, X, s2)) for X in (W, jb.rzf(H, 1.0, s2)))
    assert np.all(sr >= rzf * (1 - 1e-4)), np.min(sr / rzf)
    with jax.enable_x64(True):
        H64 = H.astype(jnp.complex128)
        sr64 = np.asarray(jb.sum_rate(H64, jb.wmmse(H64, 1.0, s2, tol=1e-5), s2))
    np.testing.assert_allclose(np.mean(sr), np.mean(sr64), rtol=1e-4)


def test_sca_mr_reaches_the_exact_maxmin_on_every_sample(case_612, sca_runs):
    """Targets of issue 14 on 64 samples: >= 99.9 % of jb.maxmin_exact on average, >= 99 % on each
    (before: 99.85 % / 97.4 %, the step collapsed and the solver stopped at the first allowed
    iteration). SCA is feasible, so it can never exceed the global optimum (up to float32 round-off)."""
    _, exact, _ = case_612
    mr = sca_runs["mr", 10]
    assert mr.mean() >= 0.999 * exact.mean(), mr.mean() / exact.mean()
    assert np.all(mr >= 0.99 * exact), np.min(mr / exact)
    assert np.all(mr <= exact * (1 + 1e-5))


def test_sca_ee_matches_or_beats_the_best_of_a_50_level_wmmse_grid(case_612, sca_runs):
    """>= 100 % of the per-sample best of WMMSE (tol 1e-6) at P j / 50 on average (float32 round-off of
    1e-5 allowed), >= 99.5 % on every sample (before: 99.9 % / 97.7 %)."""
    _, _, ref = case_612
    ee = sca_runs["ee", 10]
    assert ee.mean() >= (1 - 1e-5) * ref.mean(), ee.mean() / ref.mean()
    assert np.all(ee >= 0.995 * ref), np.min(ee / ref)


@pytest.mark.parametrize("u", ["mr", pytest.param("ee", marks=pytest.mark.slow)])  # EE x 50 steps: ~1 min
def test_sca_more_inner_steps_is_not_worse(sca_runs, u):
    """50 projected-gradient steps per subproblem solve it at least as well as 10: no systematic loss
    (before the fix, samples ended worse with 50 steps, 14.886 against 14.960)."""
    a, b = sca_runs[u, 10], sca_runs[u, 50]
    assert b.mean() >= a.mean() * (1 - 2e-5), (b.mean(), a.mean())
    assert np.all(b >= a * (1 - 5e-3)), np.min(b / a)


@pytest.mark.parametrize("K", [8, 16])
@pytest.mark.parametrize("snr_db", [15, 20])
def test_wmmse_default_stop_is_converged_at_high_snr_and_the_paper_rule_is_not(K, snr_db):
    """At K = N and 15-20 dB the paper's one-iteration rule ends 0.2-0.4 % below convergence (mean sum
    rate, 64 channels); the default per-user-rate rule is within 0.1 %."""
    P = 10 ** (snr_db / 10)
    H = channels(64, K, K, seed=2)
    run = lambda **kw: np.asarray(jb.sum_rate(H, jax.jit(lambda H: jb.wmmse(H, P, 1.0, **kw))(H), 1.0)).mean()
    converged = run(tol=1e-9, stop="paper", max_iter=1500)
    default, paper = run(), run(stop="paper")
    assert default >= (1 - 1e-3) * converged, (default, converged)
    assert paper < (1 - 1e-3) * converged, (paper, converged)


@pytest.mark.parametrize("K, N", [(6, 12), (8, 16)])
def test_maxmin_balance_agrees_with_bisection_and_certifies_its_sinr(K, N):
    H = channels(64, K, N, seed=3)
    W, info = jax.jit(lambda H: jb.maxmin_exact(H, 1.0, SIGMA2, return_info=True))(H)
    Wb = jax.jit(lambda H: jb.maxmin_exact(H, 1.0, SIGMA2, method="bisection"))(H)
    mr, mr_b = np.asarray(jb.min_rate(H, W, SIGMA2)), np.asarray(jb.min_rate(H, Wb, SIGMA2))
    assert abs(np.mean(mr / mr_b - 1)) <= 1e-4 and np.all(np.abs(mr / mr_b - 1) <= 1e-3)
    s = np.asarray(jb.sinr(H, W, SIGMA2)).min(1)
    lo, hi = np.asarray(info["sinr"]), np.asarray(info["sinr_upper"])
    assert np.all(s >= lo * (1 - 1e-5)) and np.all(lo <= hi) and np.all(hi <= lo * (1 + 1e-5))
    np.testing.assert_allclose(np.asarray(info["utility"]), mr, rtol=1e-6)
    assert np.all(np.asarray(info["iterations"]) <= 20)
    np.testing.assert_allclose(np.asarray(jb.transmit_power(W)), 1.0, rtol=1e-5)


def test_maxmin_float64_bracket_closes_and_matches_an_independent_min_power_check():
    """float64: the bracket (B) closes to 1e-12 relative, the returned beams put every user at the
    certified SINR, and no random beam set at full power has a min SINR above the certified upper bound."""
    with jax.enable_x64(True):
        H = channels(8, 4, 6, seed=4, dtype=jnp.complex128)
        W, info = jax.jit(lambda H: jb.maxmin_exact(H, 2.0, SIGMA2, return_info=True))(H)
        lo, hi = np.asarray(info["sinr"]), np.asarray(info["sinr_upper"])
        assert np.all(hi / lo - 1 <= 1e-11)
        s = np.asarray(jb.sinr(H, W, SIGMA2))
        np.testing.assert_allclose(s, np.broadcast_to(lo[:, None], s.shape), rtol=1e-9)
        # The optimum is the largest balanced SINR: a random beam set at full power is never above it.
        R = jax.random.normal(jax.random.key(5), (100,) + H.shape, dtype=H.dtype)
        R = R * jnp.sqrt(2.0 / jnp.sum(jnp.abs(R) ** 2, (-2, -1), keepdims=True))
        assert np.all(np.asarray(jb.sinr(H[None], R, SIGMA2)).min(-1) <= hi[None])


# ------------------------------------------------------------------------------ degenerate inputs
def _degenerate_batch():
    """(K, N) = (4, 6): [two identical users, a zero channel row, normal with one present user,
    normal with all users masked, normal]; and K > N (4, 2)."""
    H = np.array(channels(5, 4, 6, seed=6))
    H[0, 1] = H[0, 0]
    H[1, 2] = 0
    mask = np.ones((5, 4), bool)
    mask[2] = [False, False, True, False]
    mask[3] = False
    return jnp.asarray(H), jnp.asarray(mask)


SOLVERS = {
    "wmmse": lambda H, m: jb.wmmse(H, 1.0, SIGMA2, mask=m, return_info=True),
    "sca-sr": lambda H, m: jb.sca(H, 1.0, SIGMA2, "sr", mask=m, max_iter=8, return_info=True),
    "sca-mr": lambda H, m: jb.sca(H, 1.0, SIGMA2, "mr", mask=m, max_iter=20, return_info=True),
    "sca-ee": lambda H, m: jb.sca(H, 1.0, SIGMA2, "ee", PC, mask=m, max_iter=8, ee_levels=4, return_info=True),
    "exact": lambda H, m: jb.maxmin_exact(H, 1.0, SIGMA2, mask=m, return_info=True),
}
UTIL = {"wmmse": "sr", "sca-sr": "sr", "sca-mr": "mr", "sca-ee": "ee", "exact": "mr"}


@pytest.mark.parametrize("name", list(SOLVERS))
def test_degenerate_inputs_give_finite_feasible_beams(name):
    H, mask = _degenerate_batch()
    W, info = jax.jit(SOLVERS[name])(H, mask)
    W, u = np.asarray(W), np.asarray(info["utility"])
    assert np.all(np.isfinite(W)) and np.all(np.isfinite(u)), (W, u)
    assert np.all(np.asarray(jb.transmit_power(W)) <= 1.0 + 1e-5)
    assert np.all(W[3] == 0) and u[3] == 0  # all users masked: zero beams, utility 0
    assert np.all(W[~np.asarray(mask)] == 0)
    if UTIL[name] == "mr":
        assert u[1] == 0  # a present user with a zero channel has rate 0
    ok = np.array([0, 2, 4])
    ref = np.asarray(jb.utility(UTIL[name], H[ok], W[ok], SIGMA2, PC, mask=mask[ok]))
    np.testing.assert_allclose(u[ok], ref, rtol=1e-4)
    assert np.all(ref > 0)
    Hk = channels(3, 4, 2, seed=7)  # K > N
    Wk, infok = jax.jit(SOLVERS[name])(Hk, None)
    assert np.all(np.isfinite(np.asarray(Wk))) and np.all(np.isfinite(np.asarray(infok["utility"])))
    assert np.all(np.asarray(jb.transmit_power(Wk)) <= 1.0 + 1e-5)


# ------------------------------------------------------------------------------ bad parameters
H0 = channels(2, 3, 4)
BAD = [
    ("tol", lambda v: jb.wmmse(H0, 1.0, tol=v), [0.0, -1e-4, float("nan"), float("inf"), 1.5]),
    ("max_iter", lambda v: jb.wmmse(H0, 1.0, max_iter=v), [-1, 2.5]),
    ("multiplier", lambda v: jb.wmmse(H0, 1.0, multiplier=v), ["exact"]),
    ("stop", lambda v: jb.wmmse(H0, 1.0, stop=v), ["window2"]),
    ("window", lambda v: jb.wmmse(H0, 1.0, window=v), [0]),
    ("tol", lambda v: jb.wmmse_step(jb.wmmse_init(H0, 1.0), H0, 1.0, tol=v), [-1.0, float("nan")]),
    ("tol", lambda v: jb.sca(H0, 1.0, tol=v), [0.0, -1.0, float("nan")]),
    ("utility", lambda v: jb.sca(H0, 1.0, utility=v), ["sum-rate", "SR"]),
    ("max_iter", lambda v: jb.sca(H0, 1.0, max_iter=v), [0, -3]),
    ("inner_steps", lambda v: jb.sca(H0, 1.0, inner_steps=v), [0, -1, 1.5]),
    ("patience", lambda v: jb.sca(H0, 1.0, patience=v), [0]),
    ("ee_levels", lambda v: jb.sca(H0, 1.0, utility="ee", ee_levels=v), [0]),
    ("beta_max", lambda v: jb.sca(H0, 1.0, utility="mr", beta_max=v), [1.0, float("nan")]),
    ("beta_growth", lambda v: jb.sca(H0, 1.0, utility="mr", beta_growth=v), [0.5]),
    ("method", lambda v: jb.maxmin_exact(H0, 1.0, method=v), ["newton"]),
    ("bisect_steps", lambda v: jb.maxmin_exact(H0, 1.0, method="bisection", bisect_steps=v), [0, -2]),
    ("bisect_steps", lambda v: jb.maxmin_exact(H0, 1.0, bisect_steps=v), [20]),  # not the default method's
    ("fp_rtol", lambda v: jb.maxmin_exact(H0, 1.0, fp_rtol=v), [0.0, -1e-6, float("nan")]),
    ("max_fp", lambda v: jb.maxmin_exact(H0, 1.0, max_fp=v), [0]),
]


@pytest.mark.parametrize("arg, call, values", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_solver_parameters_raise_value_errors_naming_them(arg, call, values):
    for v in values:
        with pytest.raises(ValueError, match=arg):
            call(v)
