"""Per-antenna power constraints in the functional core (#19): projection, per-antenna GPA, scaling."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb


def _col_power(W):
    return np.sum(np.abs(np.asarray(W, np.complex128)) ** 2, axis=-2)


@pytest.fixture(scope="module")
def W():
    return jb.rzf(jb.rayleigh(jax.random.key(0), (6,), 3, 5), 2.0, 0.1)


@pytest.mark.usefixtures("x64")
def test_projection_is_the_nearest_feasible_point():
    """Against a numpy loop, and optimal: ``Re<W - Pi(W), V - Pi(W)> <= 0`` for every feasible V."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 3, 5)) + 1j * rng.normal(size=(4, 3, 5))
    P_n = rng.uniform(0.5, 4.0, size=(4, 5))
    out = np.asarray(jb.project_antenna_power(W, P_n))
    for b in range(4):
        for n in range(5):
            col = W[b, :, n]
            norm2 = np.sum(np.abs(col) ** 2)
            expect = col if norm2 <= P_n[b, n] else col * np.sqrt(P_n[b, n] / norm2)
            np.testing.assert_allclose(out[b, :, n], expect, rtol=1e-12)
    assert np.all(_col_power(out) <= P_n * (1 + 1e-12))
    for _ in range(20):
        V = rng.normal(size=W.shape) + 1j * rng.normal(size=W.shape)
        V = np.asarray(jb.project_antenna_power(V, P_n)) * rng.uniform(0, 1, size=(4, 1, 5))  # feasible
        assert np.all(np.sum(np.real(np.conj(W - out) * (V - out)), axis=(-2, -1)) <= 1e-9)


def test_gpa_antenna_is_eq15_per_column(W):
    P_n = np.array([0.2, 0.3, 0.4, 0.5, 0.6], np.float32)
    raw = np.asarray(W) * np.array([0.1, 1.0, 3.0, 0.5, 10.0], np.float32)  # columns inside and outside the ball
    out = np.asarray(jb.gpa_antenna(raw, P_n))
    norm2 = _col_power(raw)
    expect = raw * (np.sqrt(P_n) / np.sqrt(np.maximum(norm2, 1.0)))[:, None, :]
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-7)
    assert np.all(_col_power(out) <= P_n * (1 + 1e-5))
    g = jax.grad(lambda x: jnp.sum(jb.sum_rate(jb.rayleigh(jax.random.key(1), 6, 3, 5), jb.gpa_antenna(x, 0.3))))(
        jnp.zeros_like(W)
    )
    assert np.all(np.isfinite(np.asarray(g)))  # finite at W = 0


def test_scaled_precoder_is_feasible_with_one_antenna_tight_and_keeps_directions(W):
    P_n = 2.0 / 5
    out = np.asarray(jb.scale_antenna_power(W, P_n))
    p = _col_power(out)
    assert np.all(p <= P_n * (1 + 1e-5)) and np.allclose(p.max(-1), P_n, rtol=1e-5)
    Wn = np.asarray(W)
    s = np.sum(out * Wn.conj(), axis=(-2, -1)) / np.sum(np.abs(Wn) ** 2, axis=(-2, -1))  # one factor per sample
    np.testing.assert_allclose(s.imag, 0, atol=1e-6)
    np.testing.assert_allclose(out, s.real[:, None, None] * Wn, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(jb.scale_antenna_power(jnp.zeros_like(W), P_n)), 0)
    # masked users do not count
    mask = np.array([True, False, True])
    out_m = np.asarray(jb.scale_antenna_power(W, P_n, mask=mask))
    assert np.all(out_m[:, 1] == 0) and np.allclose(_col_power(out_m).max(-1), P_n, rtol=1e-5)


def test_large_inputs_do_not_overflow(W):
    """At x 1e30 (``||W[:, n]||^2`` overflows float32) every column is outside its ball: the projection and the
    GPA put each on its surface, and the scaling is scale-free."""
    big = np.asarray(W) * np.float32(1e30)
    Wn = np.asarray(W, np.complex128)
    unit = Wn * np.sqrt(0.4 / _col_power(Wn))[:, None, :]
    for f in (jb.project_antenna_power, jb.gpa_antenna):
        np.testing.assert_allclose(np.asarray(f(big, 0.4)), unit, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(jb.scale_antenna_power(big, 0.4), jb.scale_antenna_power(W, 0.4), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("fn", [jb.project_antenna_power, jb.gpa_antenna, jb.scale_antenna_power])
def test_bad_budgets_name_the_argument(fn, W):
    for bad in (0.0, -1.0, float("nan"), np.array([1.0, 1.0, -1.0, 1.0, 1.0])):
        with pytest.raises(ValueError, match="P_n must be finite > 0"):
            fn(W, bad)
    with pytest.raises(ValueError, match=r"P_n must be a scalar \(every antenna\) or per antenna \(\.\.\., N=5\)"):
        fn(W, np.ones(4))
    with pytest.raises(TypeError, match="P_n must be real"):
        fn(W, 1.0 + 0j)
    chex.assert_trees_all_close(jax.jit(lambda w: fn(w, 0.3))(W), fn(W, 0.3), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda w, p: fn(w, p))(W, -1.0)), 0)  # traced P_n <= 0


def test_models_under_per_antenna_budgets():
    """BERT and UBERT (every head) with ``power="antenna"``: every antenna within P / N (UBERT: P / N_present);
    the total-power models are untouched by the option's existence (their identity: tests/test_cache_keys.py)."""
    H = jb.rayleigh(jax.random.key(7), (4,), 3, 6)
    P = jnp.array([1.0, 2.0, 0.5, 3.0])
    bert = jb.models.BERT(num_antennas=6, features=16, num_layers=1, num_heads=2, power="antenna")
    v = bert.init(jax.random.key(0), H, P)
    raw = jax.tree.map(lambda x: 300.0 * x if x.ndim == 2 else x, v)  # outputs well outside the unit balls
    for params in (v, raw):
        W = jax.jit(bert.apply)(params, H, P)
        assert np.all(_col_power(W) <= (np.asarray(P) / 6)[:, None] * (1 + 1e-5))
    assert np.allclose(_col_power(bert.apply(raw, H, P)), (np.asarray(P) / 6)[:, None], rtol=1e-4)  # GPA: full use
    amask = jnp.arange(6)[None, :] < jnp.array([6, 5, 4, 6])[:, None]
    for head in ("element", "structured", "balanced"):
        ubert = jb.models.UBERT(features=16, num_layers=1, num_heads=2, head=head, power="antenna")
        task = jnp.array([0, 1, 2, 0])
        vu = ubert.init(jax.random.key(1), H, P, task)
        W = np.asarray(jax.jit(ubert.apply)(vu, H, P, task, antenna_mask=amask))
        n = np.array([6, 5, 4, 6])
        assert np.all(_col_power(W) <= (np.asarray(P) / n)[:, None] * (1 + 1e-5)), head
        assert np.all(W[~np.asarray(amask)[:, None, :].repeat(3, 1)] == 0)
    with pytest.raises(ValueError, match="power must be one of"):
        jb.models.BERT(num_antennas=6, features=16, num_layers=1, num_heads=2, power="column").init(
            jax.random.key(0), H, P
        )


def test_per_antenna_references_are_feasible_and_scored_against_the_labels():
    """``performance_rows(power="antenna")``: every reference meets P / N per antenna; WMMSE is the per-antenna
    solver itself (100 % of labels it made), the closed forms are the total-power ones scaled into the set."""
    from jaxbeam.data.format import LabelSet, split_ids
    from jaxbeam.jobs.evaluate import REFERENCES, performance_rows, reference_beams

    H = jb.rayleigh(jax.random.key(3), (8,), 3, 4)
    P = jnp.array([1.0, 2.0] * 4)
    for name in REFERENCES:
        W = reference_beams(name, H, P, 0.1, power="antenna")
        assert np.all(_col_power(W) <= (np.asarray(P) / 4)[:, None] * (1 + 1e-5)), name
    rzf = jb.scale_antenna_power(jb.rzf(H, P, 0.1), P[:, None] / 4 * jnp.ones(4))
    np.testing.assert_allclose(reference_beams("rzf", H, P, 0.1, power="antenna"), rzf, rtol=1e-6)
    W = jb.wmmse_antenna(H, P[:, None] / 4 * jnp.ones(4), 0.1)
    U = jb.utility("sr", H, W, 0.1)
    labels = LabelSet(H=np.asarray(H), W=np.asarray(W), P=np.asarray(P), U=np.asarray(U), split_ids=split_ids(8, 0),
                      meta={"utility": "sr", "solver": "wmmse-antenna"})  # fmt: skip
    rows = performance_rows("sr", labels, 0.1, 0.5, power="antenna")
    assert [r["P"] for r in rows] == [1.0, 2.0]
    for r in rows:
        assert r["wmmse"] == pytest.approx(100.0, abs=1e-3) and r["rzf"] < 100.0 and r["zf"] < 100.0
    with pytest.raises(ValueError, match="power must be 'total' or 'antenna'"):
        reference_beams("rzf", H, P, 0.1, power="column")


def test_one_power_argument_selects_the_per_antenna_budget():
    """``power="antenna"`` on the total-power API is the per-antenna function with ``P / N`` each (a numpy
    split of P per sample), feasible per antenna; ``"total"`` stays the default; a bad value names ``power``."""
    H = jb.rayleigh(jax.random.key(4), (5,), 3, 4)
    P = jnp.array([1.0, 2.0, 0.5, 3.0, 1.5])
    P_n = np.repeat(np.asarray(P)[:, None] / 4, 4, axis=1)
    W = jb.rzf(H, P, 0.1) * 3.0
    pairs = {
        "project_power": (jb.project_power(W, P, power="antenna"), jb.project_antenna_power(W, P_n)),
        "gpa": (jb.gpa(W, P, power="antenna"), jb.gpa_antenna(W, P_n)),
        "mrt": (jb.mrt(H, P, power="antenna"), jb.scale_antenna_power(jb.mrt(H, P), P_n)),
        "zf": (jb.zf(H, P, power="antenna"), jb.scale_antenna_power(jb.zf(H, P), P_n)),
        "rzf": (jb.rzf(H, P, 0.1, power="antenna"), jb.scale_antenna_power(jb.rzf(H, P, 0.1), P_n)),
        "wmmse": (jb.wmmse(H, P, 0.1, power="antenna"), jb.wmmse_antenna(H, P_n, 0.1)),
    }
    for name, (got, want) in pairs.items():
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6, err_msg=name)
        assert np.all(_col_power(got) <= P_n * (1 + 1e-5)), name
    np.testing.assert_array_equal(np.asarray(jb.rzf(H, P, 0.1, power="total")), np.asarray(jb.rzf(H, P, 0.1)))
    np.testing.assert_array_equal(np.asarray(jb.gpa(W, P, power="total")), np.asarray(jb.gpa(W, P)))
    for call in (lambda: jb.rzf(H, P, 0.1, power="column"), lambda: jb.wmmse(H, P, power="per-antenna")):
        with pytest.raises(ValueError, match="power must be one of"):
            call()
    with pytest.raises(ValueError, match="P"):
        jb.gpa(W, -1.0, power="antenna")


def test_feasible_against_numpy_and_evaluation_refuses_infeasible_beams():
    """``jb.feasible`` against a numpy loop for both constraints; eq. 31 scoring refuses beams (labels too)
    that exceed the constraint they are scored under."""
    from jaxbeam.data.format import LabelSet
    from jaxbeam.jobs.evaluate import performance_rows

    H = jb.rayleigh(jax.random.key(7), (6,), 3, 4)
    P = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 2.0], np.float32)
    W = np.asarray(jb.rzf(H, P, 0.1)) * np.array([1.0, 1.1, 0.5, 1.0, 0.9, 1.3])[:, None, None]
    col = np.sum(np.abs(W.astype(np.complex128)) ** 2, axis=-2)
    np.testing.assert_array_equal(np.asarray(jb.feasible(W, P)), col.sum(-1) <= P * (1 + 1e-5))
    want = np.all(col <= P[:, None] / 4 * (1 + 1e-5), axis=-1)
    np.testing.assert_array_equal(np.asarray(jb.feasible(W, P, power="antenna")), want)
    assert not want.all() and want.any()  # the case distinguishes
    ok = np.asarray(jb.rzf(H, P, 0.1))
    labels = LabelSet(H=np.asarray(H), W=ok, P=P, U=np.asarray(jb.sum_rate(H, ok, 0.1)),
                      split_ids=np.zeros(6, np.int8), meta={"utility": "sr"})  # fmt: skip
    assert performance_rows("sr", labels, 0.1, 0.5, references=("rzf",))[0]["rzf"] == pytest.approx(100.0, abs=1e-3)
    with pytest.raises(ValueError, match="label beams exceed the antenna power budget"):
        performance_rows("sr", labels, 0.1, 0.5, references=("rzf",), power="antenna")
