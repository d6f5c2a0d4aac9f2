"""Hostile calls of the public API (issue 14, item 7), generated with Hypothesis.

Every generated call perturbs at most one argument of a valid call (wrong rank, dtype, shape, a NaN/Inf
entry, a value out of range, an empty batch, an all-False mask, an unknown name, values near the float32
range's ends) and asserts one of two outcomes:

* ``error``: a ``ValueError`` or ``TypeError`` whose message names the perturbed argument;
* ``ok``: a finite result of the right shape that matches an independent float64 numpy reference where
  one is defined (utilities, power adapters, MRT, RZF), or the defining property otherwise (ZF nulls the
  interference, every beam set meets its power budget).

Traced edge values (under ``jax.jit``: P <= 0 or NaN, sigma2 <= 0, out-of-range task ids) must give finite
results, zero beams where P is not > 0. Shapes come from a small fixed set so JAX compiles each function
a few times only; Hypothesis is derandomized (the same cases every run). ``test_zz_counts`` reports how
many cases ran and how many ended in each outcome.
"""

from __future__ import annotations

import collections
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxbeam as jb
from jaxbeam.train.losses_multitask import multitask_loss

B, K, N = 3, 2, 3  # B != K, so a per-sample (B,) noise vector is an error, not per-user noise
SETTINGS = dict(
    derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck), print_blob=False
)
# One worker runs the whole file, so test_zz_counts sees every case of the run.
pytestmark = pytest.mark.xdist_group("hostile")

COUNTS: collections.Counter = collections.Counter()
RAN: set = set()

_rng = np.random.default_rng(14)
H0 = ((_rng.standard_normal((B, K, N)) + 1j * _rng.standard_normal((B, K, N))) / np.sqrt(2)).astype(np.complex64)
W0 = (0.4 * (_rng.standard_normal((B, K, N)) + 1j * _rng.standard_normal((B, K, N)))).astype(np.complex64)
MASK0 = np.array([[True, True], [True, False], [False, True]])


# ------------------------------------------------------------------------------------ numpy references
def np_utilities(H, W, s2, Pc, mask):
    """float64 loops: per-sample (SINR (K,), SR, MR, EE); absent users removed first."""
    H, W = np.asarray(H, np.complex128), np.asarray(W, np.complex128)
    b = H.shape[0]
    s2 = np.broadcast_to(np.asarray(s2, np.float64), (b, K))
    Pc = np.broadcast_to(np.asarray(Pc, np.float64), (b,))
    mask = np.ones((b, K), bool) if mask is None else np.broadcast_to(mask, (b, K))
    out = []
    for i in range(b):
        Wi = np.where(mask[i][:, None], W[i], 0)
        sinr = np.zeros(K)
        for k in range(K):
            if not mask[i, k]:
                continue
            sig = abs(np.vdot(H[i, k], Wi[k])) ** 2
            inter = sum(abs(np.vdot(H[i, k], Wi[j])) ** 2 for j in range(K) if j != k)
            sinr[k] = sig / (inter + s2[i, k])
        r = np.log2(1 + sinr)
        sr = r.sum()
        mr = r[mask[i]].min() if mask[i].any() else 0.0
        den = np.sum(np.abs(Wi) ** 2) + Pc[i]
        out.append((sinr, sr, mr, sr / den if den > 0 else 0.0))
    return out


def np_gpa(W, P, mask, project=False):
    W = np.asarray(W, np.complex128)
    if mask is not None:
        W = np.where(np.broadcast_to(mask, W.shape[:-1])[..., None], W, 0)
    P = np.broadcast_to(np.asarray(P, np.float64), W.shape[:-2])
    norm2 = np.sum(np.abs(W) ** 2, axis=(-2, -1))
    floor = P if project else np.ones_like(P)
    return W * np.sqrt(P / np.maximum(norm2, floor))[..., None, None]


def np_mrt(H, P, mask):
    H = np.asarray(H, np.complex128)
    m = np.ones(H.shape[:-1], bool) if mask is None else np.broadcast_to(mask, H.shape[:-1])
    k_act = np.maximum(m.sum(-1), 1)
    P = np.broadcast_to(np.asarray(P, np.float64), H.shape[:-2])
    n = np.linalg.norm(H, axis=-1)
    return np.where(m[..., None], H / np.where(n > 0, n, 1)[..., None], 0) * np.sqrt(P / k_act)[..., None, None]


def np_rzf(H, P, s2):
    """002 eq. 5 in N dimensions, equal noise, no mask."""
    out = []
    P = np.broadcast_to(np.asarray(P, np.float64), (H.shape[0],))
    for i in range(H.shape[0]):
        h = np.asarray(H[i], np.complex128)
        A = s2 * np.eye(N) + P[i] / K * (h.T @ h.conj())  # sum_k h_k^* h_k^T in the row convention of W
        D = np.linalg.solve(A, h.T).T
        out.append(D / np.linalg.norm(D, axis=-1, keepdims=True) * np.sqrt(P[i] / K))
    return np.stack(out)


# ------------------------------------------------------------------------------------ argument variants
def h_variant(kind: str, b: int):
    H = H0[:b]
    if b == 0 and kind in ("nan", "inf"):
        kind = "ok"  # an empty batch holds no bad entry
    return {
        "ok": (H, "ok"),
        "identical_users": (np.concatenate([H[:, :1], H[:, :1]], axis=1), "ok"),
        "big": (H * np.float32(1e30), "ok_scaled"),
        "tiny": (H * np.float32(1e-30), "ok_scaled"),
        "real": (H.real, "error"),
        "int": (np.ones((b, K, N), np.int32), "error"),
        "rank1": (H0[0, 0], "error"),
        "K0": (np.zeros((b, 0, N), np.complex64), "error"),
        "N0": (np.zeros((b, K, 0), np.complex64), "error"),
        "nan": (np.where(np.arange(N) == 1, np.nan, H).astype(np.complex64), "error"),
        "inf": (np.where(np.arange(N) == 2, np.inf, H).astype(np.complex64), "error"),
    }[kind]


P_VARIANTS = {
    "one": (1.0, "ok"),
    "per_sample": (np.array([1.0, 2.0, 0.5], np.float32), "ok"),
    "zero": (0.0, "error"),
    "negative": (-1.0, "error"),
    "nan": (float("nan"), "error"),
    "inf": (float("inf"), "error"),
    "complex": (1.0 + 0j, "error"),
    "bool": (True, "error"),
    "wrong_shape": (np.ones(B + 1, np.float32), "error"),
}
S2_VARIANTS = {
    "scalar": (0.1, "ok"),
    "per_user": (np.array([0.1, 0.3], np.float32), "ok"),
    "per_sample": (np.array([[0.1], [0.2], [0.05]], np.float32), "ok"),
    "per_sample_user": (np.full((B, K), 0.2, np.float32), "ok"),
    "zero": (0.0, "error"),
    "negative": (-0.1, "error"),
    "nan": (float("nan"), "error"),
    "flat_per_sample": (np.array([0.1, 0.2, 0.05], np.float32), "error"),  # (B,) with B != K: ambiguous
    "complex": (0.1 + 0j, "error"),
}
PC_VARIANTS = {
    "default": (0.5, "ok"),
    "zero": (0.0, "ok"),
    "negative": (-0.5, "error"),
    "nan": (float("nan"), "error"),
    "wrong_shape": (np.ones(B + 1, np.float32), "error"),
}
MASK_VARIANTS = {
    "none": (None, "ok"),
    "some": (MASK0, "ok"),
    "all_false": (np.zeros((B, K), bool), "ok"),
    "int": (MASK0.astype(np.int32), "error"),
    "wrong_shape": (np.ones((B, K + 1), bool), "error"),
}
NAME_VARIANTS = {
    "sr": ("sr", "ok"),
    "mr": ("mr", "ok"),
    "ee": ("ee", "ok"),
    "bad": ("rate", "error"),
    "int": (1, "error"),
}


def _record(outcome: str, test: str) -> None:
    COUNTS[outcome] += 1
    COUNTS["total"] += 1
    RAN.add(test)


def _expect_error(call, arg: str, test: str):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert arg in str(info.value), f"the error should name {arg!r}: {info.value}"
    _record("error", test)


def _finite(x):
    for leaf in jax.tree.leaves(x):
        assert np.all(np.isfinite(np.asarray(leaf))), "non-finite output"


# ------------------------------------------------------------------------------------------- utilities
UTIL_FUNCS = ("sinr", "rates", "sum_rate", "min_rate", "energy_efficiency", "utility")


@settings(max_examples=90, **SETTINGS)
@given(
    fn=st.sampled_from(UTIL_FUNCS),
    b=st.sampled_from([B, 0]),
    arg=st.sampled_from(["none", "H", "W", "sigma2", "Pc", "mask", "name"]),
    data=st.data(),
)
def test_hostile_utilities(fn, b, arg, data):
    H, W, s2, Pc, mask, name = H0[:b], W0[:b], 0.1, 0.5, None, "ee"
    expect = "ok"
    if arg == "H":
        H, expect = h_variant(
            data.draw(
                st.sampled_from(["identical_users", "big", "tiny", "real", "int", "rank1", "K0", "N0", "nan", "inf"])
            ),
            b,
        )
        if H.ndim == 3 and H.shape[-2:] != (K, N):
            W = W0[:b, : H.shape[1], : H.shape[2]]  # K = 0 / N = 0 in both: the error must name H
    elif arg == "W":
        kind = data.draw(st.sampled_from(["big", "tiny", "real", "nan", "mismatch_K", "mismatch_N", "zero"]))
        W, expect = {
            "big": (W0[:b] * np.float32(1e30), "ok_scaled"),
            "tiny": (W0[:b] * np.float32(1e-30), "ok_scaled"),
            "real": (W0[:b].real, "error"),
            "nan": (np.where(np.arange(N) == 0, np.nan, W0[:b]).astype(np.complex64), "error" if b else "ok"),
            "mismatch_K": (W0[:b, :1], "error"),
            "mismatch_N": (W0[:b, :, :2], "error"),
            "zero": (np.zeros_like(W0[:b]), "ok"),
        }[kind]
    elif arg == "sigma2":
        s2, expect = S2_VARIANTS[data.draw(st.sampled_from(sorted(S2_VARIANTS)))]
        if b == 0 and np.ndim(s2) == 2:
            s2 = s2[:0]
    elif arg == "Pc":
        Pc, expect = PC_VARIANTS[data.draw(st.sampled_from(sorted(PC_VARIANTS)))]
    elif arg == "mask":
        mask, expect = MASK_VARIANTS[data.draw(st.sampled_from(sorted(MASK_VARIANTS)))]
        mask = None if mask is None else mask[:b]
    elif arg == "name":
        name, expect = NAME_VARIANTS[data.draw(st.sampled_from(sorted(NAME_VARIANTS)))]
    if fn not in ("energy_efficiency", "utility") and arg == "Pc":
        arg, expect = "none", "ok"
    if fn != "utility" and arg == "name":
        arg, expect = "none", "ok"

    def call():
        if fn == "utility":
            return jb.utility(name, H, W, s2, Pc, mask)
        if fn == "energy_efficiency":
            return jb.energy_efficiency(H, W, s2, Pc, mask)
        return getattr(jb, fn)(H, W, s2, mask)

    if expect == "error":
        return _expect_error(call, arg, "utilities")
    out = np.asarray(call())
    _finite(out)
    ref = np_utilities(H, W, s2, Pc if arg == "Pc" else 0.5, mask)
    key = {"sinr": 0, "rates": 0, "sum_rate": 1, "min_rate": 2, "energy_efficiency": 3}.get(fn)
    if fn == "utility":
        key = {"sr": 1, "mr": 2, "ee": 3}[name]
    want = np.array([r[key] for r in ref]).reshape(out.shape)
    if fn == "rates":
        want = np.log2(1 + want)
    rtol = 1e-3 if expect == "ok_scaled" else 1e-4
    np.testing.assert_allclose(out, want, rtol=rtol, atol=1e-6 * (1 + np.abs(want).max(initial=0)))
    _record("ok", "utilities")


@settings(max_examples=20, **SETTINGS)
@given(
    kind=st.sampled_from(["ok", "zero_ref", "shape", "complex", "nan", "empty", "traced_zero_ref"]),
)
def test_hostile_performance(kind):
    u, ref = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])
    if kind == "ok":
        np.testing.assert_allclose(jb.performance(u, ref), 100.0 * 2.0 / 2.0)
        return _record("ok", "performance")
    if kind == "traced_zero_ref":
        out = jax.jit(jb.performance)(u, np.zeros(3))
        assert np.isnan(out)  # documented: undefined, NaN (never a silent inf)
        return _record("ok", "performance")
    bad = {
        "zero_ref": (u, np.array([1.0, -1.0, 0.0]), "u_reference"),
        "shape": (u, ref[:2], "u_reference"),
        "complex": (u + 0j, ref, "u_model"),
        "nan": (u, np.array([1.0, np.nan, 1.0]), "u_reference"),
        "empty": (u[:0], ref[:0], "u_model"),
    }[kind]
    _expect_error(lambda: jb.performance(bad[0], bad[1]), bad[2], "performance")


# ------------------------------------------------------------------------------------- power adapters
def _any_beams(fn, X, P, s2, mask):
    if fn in ("gpa", "project_power"):
        return getattr(jb, fn)(X, P, mask=mask)
    if fn in ("mrt", "zf"):
        return getattr(jb, fn)(X, P, mask=mask)
    if fn == "rzf":
        return jb.rzf(X, P, s2, mask=mask)
    return jb.maxmin_power(X, jb.mrt(X, 1.0, mask=mask), P, s2, mask=mask)


_jit_beams = jax.jit(_any_beams, static_argnames=("fn",))


def _jit_normalised(fn, X, P, s2, mask):
    """``_any_beams`` under jit with P, sigma2 and mask broadcast to full shapes (the same values), so JAX
    compiles once per (fn, batch size) across all examples; the eager calls check the concrete values."""
    b = X.shape[0]
    P = np.broadcast_to(np.asarray(P, np.float32), (b,))
    s2 = np.broadcast_to(np.asarray(s2, np.float32), (b, K))
    mask = np.ones((b, K), bool) if mask is None else mask
    return _jit_beams(fn, X, P, s2, mask)


BEAM_FUNCS = ("gpa", "project_power", "mrt", "zf", "rzf", "maxmin_power")


@settings(max_examples=90, **SETTINGS)
@given(
    fn=st.sampled_from(BEAM_FUNCS),
    b=st.sampled_from([B, 0]),
    arg=st.sampled_from(["none", "X", "P", "sigma2", "mask", "traced_P"]),
    data=st.data(),
)
def test_hostile_beams(fn, b, arg, data):
    """gpa / project_power take W; mrt / zf / rzf / maxmin_power take H (X stands for either)."""
    xname = "W" if fn in ("gpa", "project_power") else "H"
    X, P, s2, mask, expect = (W0 if xname == "W" else H0)[:b], 1.0, 0.1, None, "ok"
    if arg == "X":
        kind = data.draw(
            st.sampled_from(["identical_users", "big", "tiny", "real", "int", "rank1", "K0", "N0", "nan", "inf"])
        )
        X, expect = h_variant(kind, b)
        if xname == "W" and kind not in ("real", "int", "rank1", "K0", "N0", "nan", "inf"):
            X = X * np.float32(3.0)  # outside the unit ball, where GPA / projection are scale-invariant
    elif arg == "P":
        P, expect = P_VARIANTS[data.draw(st.sampled_from(sorted(P_VARIANTS)))]
        if b == 0 and np.ndim(P) == 1 and expect == "ok":
            P = P[:0]
    elif arg == "sigma2":
        s2, expect = S2_VARIANTS[data.draw(st.sampled_from(sorted(S2_VARIANTS)))]
        if b == 0 and np.ndim(s2) == 2:
            s2 = s2[:0]
        if fn not in ("rzf", "maxmin_power"):
            arg, expect, s2 = "none", "ok", 0.1
    elif arg == "mask":
        mask, expect = MASK_VARIANTS[data.draw(st.sampled_from(sorted(MASK_VARIANTS)))]
        mask = None if mask is None else mask[:b]
    elif arg == "traced_P":
        P, expect = np.array([1.0, 0.0, np.nan], np.float32)[:b], "traced"
        if b == 0:
            arg, expect, P = "none", "ok", 1.0
    argname = {"X": xname}.get(arg, arg)

    def call():
        if fn in ("gpa", "project_power", "mrt") or expect == "error":  # cheap, or the checks raise first
            return _any_beams(fn, X, P, s2, mask)
        return _jit_normalised(fn, X, P, s2, mask)

    if expect == "error":
        return _expect_error(call, argname, "beams")
    if expect == "traced":
        out = np.asarray(_jit_normalised(fn, X, P, s2, mask))
        _finite(out)
        np.testing.assert_array_equal(out[1:], 0)  # P = 0 and P = NaN: zero beams
        assert 0 < np.sum(np.abs(out[0]) ** 2) <= 1 + 1e-4
        return _record("ok", "beams")
    out = np.asarray(call())
    _finite(out)
    assert out.shape == X.shape
    Pb = np.broadcast_to(np.asarray(P, np.float64), (b,))
    power = np.sum(np.abs(out.astype(np.complex128)) ** 2, axis=(-2, -1))
    assert np.all(power <= Pb * (1 + 1e-4) + 1e-30)
    m = np.ones((b, K), bool) if mask is None else mask
    if fn in ("gpa", "project_power"):
        want = np_gpa(X, P, mask, project=fn == "project_power")
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6 * np.abs(want).max(initial=1e-30))
    elif fn == "mrt":
        np.testing.assert_allclose(out, np_mrt(X, P, mask), rtol=1e-5, atol=1e-6)
    elif fn == "zf" and arg != "X" and b:
        G = np.einsum("bkn,bin->bki", np.conj(H0[:b].astype(np.complex128)), out)
        off = np.where(np.eye(K, dtype=bool) | ~m[:, :, None] | ~m[:, None, :], 0, np.abs(G))
        assert off.max() <= 1e-3 * np.abs(G).max()
    elif fn == "rzf" and arg == "none" and b:
        np.testing.assert_allclose(out, np_rzf(X, P, s2), rtol=1e-4, atol=1e-5)
    if fn in ("mrt", "zf", "rzf", "maxmin_power") and b:
        full = np.where(m.any(-1), Pb, 0.0)  # full power on samples with a present user (and a usable channel)
        np.testing.assert_allclose(power, full, rtol=1e-4, atol=1e-6)
    _record("ok", "beams")


# ------------------------------------------------------------------------------------ tokens, channels
@settings(max_examples=25, **SETTINGS)
@given(
    fn=st.sampled_from(["user_tokens", "antenna_tokens", "angle_domain", "spatial_domain", "rayleigh", "csi_error"]),
    kind=st.sampled_from(["ok", "empty", "big", "real", "rank1", "K0", "nan", "bad_K", "bad_batch", "bad_mu"]),
)
def test_hostile_tokens_and_channels(fn, kind):
    if fn != "rayleigh":
        if kind in ("bad_K", "bad_batch"):
            kind = "ok"
        if kind == "bad_mu" and fn != "csi_error":
            kind = "ok"
        H, expect = h_variant({"empty": "ok", "bad_mu": "ok"}.get(kind, kind), 0 if kind == "empty" else B)
        mu = float("nan") if kind == "bad_mu" else -20.0
        expect = "error" if kind == "bad_mu" else expect
        if fn == "csi_error":
            call = lambda: jb.csi_error(jax.random.key(0), H, mu)  # noqa: E731
        else:
            call = lambda: getattr(jb, fn)(H)  # noqa: E731
        if expect == "error":
            return _expect_error(
                call, {"bad_mu": "mu_db"}.get(kind, "W_a" if fn == "spatial_domain" else "H"), "tokens"
            )
        out = np.asarray(call())
        _finite(out)
        if fn == "user_tokens":
            np.testing.assert_array_equal(out, np.concatenate([H.real, H.imag], -1))
        elif fn == "antenna_tokens":
            np.testing.assert_array_equal(out, np.stack([H.real, H.imag], -1))
        elif fn in ("angle_domain", "spatial_domain"):  # the orthonormal DFT, also at x 1e30 and x 1e-30
            ref = (np.fft.fft if fn == "angle_domain" else np.fft.ifft)(H.astype(np.complex128), norm="ortho")
            scale = np.abs(H).max() if H.size else 1.0
            np.testing.assert_allclose(out / scale, ref / scale, atol=1e-5)
        else:
            e = np.linalg.norm((out - H).astype(np.complex128), axis=-1) / np.linalg.norm(
                H.astype(np.complex128), axis=-1
            )
            np.testing.assert_allclose(e, 10 ** (-20 / 20), rtol=1e-3)
        return _record("ok", "tokens")
    bad = {
        "bad_K": ((B,), 0, N, "K"),
        "bad_batch": ((-1,), K, N, "batch_shape"),
        "K0": ((B,), K, 0, "N"),
        "real": ((B,), 2.5, N, "K"),
    }
    if kind in bad:
        shape, k, n, name = bad[kind]
        return _expect_error(lambda: jb.rayleigh(jax.random.key(0), shape, k, n), name, "tokens")
    out = jb.rayleigh(jax.random.key(0), (0 if kind == "empty" else B,), K, N)
    assert out.shape == (0 if kind == "empty" else B, K, N) and out.dtype == jnp.complex64
    _record("ok", "tokens")


# ------------------------------------------------------------------------------------- solvers, tasks
@settings(max_examples=35, **SETTINGS)
@given(
    fn=st.sampled_from(["wmmse", "sca", "maxmin_exact"]),
    arg=st.sampled_from(["H", "P", "sigma2", "mask", "weights"]),
    data=st.data(),
)
def test_hostile_solver_arguments(fn, arg, data):
    """Invalid concrete arguments of the solvers are rejected by their shared entry before any iteration."""
    H, P, s2, mask, kw = H0, 1.0, 0.1, None, {}
    if arg == "H":
        H, _ = h_variant(data.draw(st.sampled_from(["real", "int", "rank1", "K0", "nan", "inf"])), B)
    elif arg == "P":
        P, _ = P_VARIANTS[data.draw(st.sampled_from(["zero", "negative", "nan", "inf", "complex", "wrong_shape"]))]
    elif arg == "sigma2":
        s2, _ = S2_VARIANTS[data.draw(st.sampled_from(["zero", "negative", "nan", "flat_per_sample", "complex"]))]
    elif arg == "mask":
        mask, _ = MASK_VARIANTS[data.draw(st.sampled_from(["int", "wrong_shape"]))]
    else:
        fn = "wmmse"
        kw = {"weights": data.draw(st.sampled_from([np.array([1.0, -1.0]), np.array([np.nan, 1.0]), np.ones(K + 1)]))}
    call = {
        "wmmse": lambda: jb.wmmse(H, P, s2, mask=mask, **kw),
        "sca": lambda: jb.sca(H, P, s2, "sr", mask=mask),
        "maxmin_exact": lambda: jb.maxmin_exact(H, P, s2, mask=mask),
    }[fn]
    _expect_error(call, arg, "solvers")


_jit_multitask_loss = jax.jit(multitask_loss)


@settings(max_examples=20, **SETTINGS)
@given(kind=st.sampled_from(["ok", "high", "negative", "float", "shape", "traced"]))
def test_hostile_task_ids(kind):
    Wl = jb.rzf(H0, 1.0, 0.1)
    task = {
        "ok": np.array([0, 1, 2]),
        "high": np.array([0, 3, 1]),
        "negative": np.array([-1, 0, 0]),
        "float": np.array([0.0, 1.0, 2.0]),
        "shape": np.array([0, 1]),
        "traced": np.array([0, 7, -4]),
    }[kind]
    if kind in ("ok", "traced"):
        f = _jit_multitask_loss if kind == "traced" else multitask_loss
        out = f(W0 * 3, Wl, task)
        _finite(out)
        return _record("ok", "tasks")
    _expect_error(lambda: multitask_loss(W0 * 3, Wl, task), "task", "tasks")


def test_zz_counts(capsys):
    """Report the outcome counts; with the whole file run, at least 200 hostile cases ran."""
    with capsys.disabled():
        print(f"\nhostile cases: {dict(COUNTS)}")
    expected = {"utilities", "performance", "beams", "tokens", "solvers", "tasks"}
    if RAN >= expected:
        assert COUNTS["total"] >= 200, COUNTS
        assert COUNTS["error"] > 50 and COUNTS["ok"] > 50, COUNTS


# ------------------------------------------------------------------ issue "Trust, second pass", item 12
# Fixed lists rather than Hypothesis: each case builds a small model, and every case should run every time.
def _models():
    from jaxbeam.models import BERT, CNN, GAT, GCN, GPT, MLP, UBERT

    return {
        "BERT": lambda **kw: BERT(**{"num_antennas": N, "features": 4, "num_layers": 1, "num_heads": 2, **kw}),
        "UBERT": lambda **kw: UBERT(**{"features": 4, "num_layers": 1, "num_heads": 2, **kw}),
        "GPT": lambda **kw: GPT(**{"num_antennas": N, "features": 4, "num_layers": 1, "num_heads": 2, **kw}),
        "GAT": lambda **kw: GAT(**{"num_antennas": N, "features": 4, "num_layers": 1, "num_heads": 2, **kw}),
        "GCN": lambda **kw: GCN(**{"num_antennas": N, "features": 4, "num_layers": 1, **kw}),
        "MLP": lambda **kw: MLP(**{"num_users": K, "num_antennas": N, "features": 4, "num_layers": 1, **kw}),
        "CNN": lambda **kw: CNN(**{"num_users": K, "num_antennas": N, "features": 4, "num_layers": 1, **kw}),
    }


def _call_args(name, H=H0):
    return (H, 1.0, 0) if name == "UBERT" else (H, 1.0)


SIZE_CASES = [
    (m, attr, v)
    for m, attrs in {
        "BERT": ("num_antennas", "features", "num_layers", "num_heads", "mlp_ratio"),
        "UBERT": ("features", "num_layers", "num_heads", "mlp_ratio", "head_hidden", "balance_iters"),
        "GPT": ("num_antennas", "features", "num_layers", "num_heads", "mlp_ratio"),
        "GAT": ("num_antennas", "features", "num_layers", "num_heads"),
        "GCN": ("num_antennas", "features", "num_layers"),
        "MLP": ("num_users", "num_antennas", "features", "num_layers"),
        "CNN": ("num_users", "features", "num_layers", "channels", "kernel_size"),
    }.items()
    for attr in attrs
    for v in ((-1, 2.0) if attr in ("num_layers", "head_hidden") else (0, -4, 2.0, True))
]


@pytest.mark.parametrize("model,attr,value", SIZE_CASES, ids=[f"{m}-{a}={v!r}" for m, a, v in SIZE_CASES])
def test_hostile_model_sizes(model, attr, value):
    """A width, layer or head count that is not an int in range names the attribute (``features=0`` was a
    ``ZeroDivisionError`` of an initialiser; ``num_layers=-1`` a model without layers)."""
    m = _models()[model](**{attr: value})
    _expect_error(lambda: m.init(jax.random.key(0), *_call_args(model)), attr, "model sizes")


@pytest.mark.parametrize("model", ["BERT", "UBERT", "GPT", "GAT", "GCN", "MLP", "CNN"])
def test_hostile_model_channel_scale(model):
    """``H x 1e30`` names ``H`` and its scale (it was "W must be finite"), or gives finite feasible beams;
    ``H x 1e-30`` gives finite feasible beams."""
    m = _models()[model]()
    v = m.init(jax.random.key(0), *_call_args(model))
    for c in (np.float32(1e-30), np.float32(1e30)):
        H = H0 * c
        try:
            W = np.asarray(m.apply(v, *_call_args(model, H)))
        except ValueError as e:
            assert c > 1 and re.search(r"\bH\b.*e\+30", str(e)), e
            assert "W must be finite" not in str(e), e
            _record("error", "model scale")
            continue
        _finite(W)
        assert np.all(np.sum(np.abs(W) ** 2, axis=(-2, -1)) <= 1 + 1e-4)
        _record("ok", "model scale")


VARIABLE_CASES = [
    ("BERT", {"num_antennas": 2}, "num_antennas = 2"),  # made for N = 2, applied at N = 3
    ("BERT", {"features": 8}, "features = 8"),
    ("BERT", {"num_layers": 2}, "num_layers = 2"),  # extra encoder blocks were silently ignored
    ("BERT", {"num_heads": 1}, "num_heads = 1"),
    ("BERT", {"mlp_ratio": 2}, "mlp_ratio = 2"),
    ("UBERT", {"features": 8}, "features = 8"),
    ("UBERT", {"num_layers": 2}, "num_layers = 2"),
    ("UBERT", {"head": "element"}, "head = 'element'"),
    ("UBERT", {"task_embedding": False}, "task_embedding = False"),
    ("GPT", {"num_antennas": 2}, "num_antennas = 2"),
    ("GAT", {"num_antennas": 2}, "num_antennas = 2"),
    ("GAT", {"num_heads": 1}, "num_heads = 1"),
    ("GCN", {"num_antennas": 2}, "num_antennas = 2"),
    ("GCN", {"num_layers": 3}, "num_layers = 3"),
    ("MLP", {"num_antennas": 2}, "num_users * num_antennas = 4"),
    ("CNN", {"channels": 4}, "channels = 4"),
]


@pytest.mark.parametrize("model,made,says", VARIABLE_CASES, ids=[f"{m}-{s}" for m, _, s in VARIABLE_CASES])
def test_hostile_variables_of_another_model(model, made, says):
    """Variables made for other attribute values name the attribute and the value they were made for (was
    Flax's ``ScopeParamShapeError`` naming a kernel, or no error at all)."""
    other = _models()[model](**made)
    H_made = H0[..., : made["num_antennas"]] if "num_antennas" in made else H0
    v = other.init(jax.random.key(0), *_call_args(model, H_made))
    m = _models()[model]()
    with pytest.raises(ValueError, match="variables were made for") as info:
        m.apply(v, *_call_args(model))
    assert says in str(info.value), info.value
    _record("error", "variables")


def _non_numeric_cases():
    from jaxbeam.models import BERT

    bert = BERT(N, 4, 1, 2)
    v = bert.init(jax.random.key(0), H0, 1.0)
    u, key = np.array([1.0, 2.0]), jax.random.key(0)
    cases = {
        "performance-u_model": (lambda x: jb.performance(x, u), "u_model"),  # the case
        "performance-u_reference": (lambda x: jb.performance(u, x), "u_reference"),
        "sum_rate-H": (lambda x: jb.sum_rate(x, W0, 0.1), "H"),
        "sinr-W": (lambda x: jb.sinr(H0, x, 0.1), "W"),
        "rates-sigma2": (lambda x: jb.rates(H0, W0, x), "sigma2"),
        "energy_efficiency-Pc": (lambda x: jb.energy_efficiency(H0, W0, 0.1, x), "Pc"),
        "gpa-P": (lambda x: jb.gpa(W0, x), "P"),
        "mrt-mask": (lambda x: jb.mrt(H0, 1.0, mask=x), "mask"),
        "gpa_antenna-P_n": (lambda x: jb.gpa_antenna(W0, x), "P_n"),
        "feasible-rtol": (lambda x: jb.feasible(W0, 1.0, rtol=x), "rtol"),
        "angle_domain-antenna_mask": (lambda x: jb.angle_domain(H0, x), "antenna_mask"),
        "rayleigh-key": (lambda x: jb.rayleigh(x, (B,), K, N), "key"),
        "csi_error-key": (lambda x: jb.csi_error(x, H0, -20.0), "key"),
        "csi_error-mu_db": (lambda x: jb.csi_error(key, H0, x), "mu_db"),
        "wmmse-P": (lambda x: jb.wmmse(H0, x), "P"),
        "sca-Pc": (lambda x: jb.sca(H0, 1.0, 0.1, "ee", x), "Pc"),
        "multitask_loss-task": (lambda x: multitask_loss(W0, W0, x), "task"),
        "BERT-H": (lambda x: bert.apply(v, x, 1.0), "H"),
        "BERT-P": (lambda x: bert.apply(v, H0, x), "P"),
    }
    return cases


NON_NUMERIC = {"str": "abc", "None": None, "dict": {"a": 1.0}, "str_list": ["a", "b", "c"]}


@pytest.mark.parametrize("bad", sorted(NON_NUMERIC))
def test_hostile_non_numeric_arguments(bad):
    """A string, None, a dict or a list of strings where an array belongs names the argument (was JAX's
    ``TypeError`` about a "valid JAX type", or a traced-dict message)."""
    for case, (call, arg) in _non_numeric_cases().items():
        if bad == "None" and arg in ("mask", "antenna_mask"):
            continue  # None is "no mask"
        with pytest.raises((ValueError, TypeError)) as info:
            call(NON_NUMERIC[bad])
        assert re.search(rf"\b{arg}\b", str(info.value)), f"{case}: the error should name {arg!r}: {info.value}"
        assert "JitTracer" not in str(info.value) and "valid JAX" not in str(info.value).split(";")[0], info.value
        _record("error", "non-numeric")


@pytest.mark.parametrize("utility", ["sr", "mr", "ee"])
@pytest.mark.parametrize("Pc", [-1.0, float("nan"), float("inf"), np.array([0.5, -0.5, 0.5], np.float32)])
def test_hostile_circuit_power_of_sca_and_utility(utility, Pc):
    """``jb.sca(..., Pc=-1)`` was accepted (README: ``Pc < 0`` is rejected); ``jb.utility`` checks ``Pc`` for every
    name too. Both name ``Pc``."""
    _expect_error(lambda: jb.sca(H0, 1.0, 0.1, utility, Pc, max_iter=1), "Pc", "circuit power")
    _expect_error(lambda: jb.utility(utility, H0, W0, 0.1, Pc), "Pc", "circuit power")
