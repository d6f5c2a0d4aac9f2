"""The public functions run compiled when called directly, keep their value checks, and still compose."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam.core._jit import public

K, N, B = 3, 5, 4


@pytest.fixture(scope="module")
def H():
    return jb.rayleigh(jax.random.key(0), (B,), K, N)


def test_every_public_function_is_compiled():
    names = [n for n in jb.__all__ if callable(getattr(jb, n)) and n != "TASKS"]
    plain = [n for n in names if not hasattr(getattr(jb, n), "compiled")]
    assert not plain, f"public functions not wrapped by jaxbeam.core._jit.public: {plain}"


def test_direct_equals_jit_and_plain_body(H):
    W = jb.rzf(H, 2.0, 0.1)
    chex.assert_trees_all_close(W, jax.jit(lambda H: jb.rzf(H, 2.0, 0.1))(H), rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(W, jb.rzf.eager(H, 2.0, 0.1), rtol=1e-5, atol=1e-6)
    u = jb.sum_rate(H, W, 0.1)
    chex.assert_shape(u, (B,))
    np.testing.assert_allclose(u, jb.sum_rate.eager(H, W, 0.1), rtol=1e-5)
    # an iterative solver: fused and op-by-op round-off may stop a sample an iteration apart
    uw = jb.sum_rate(H, jb.wmmse(H, 2.0, 0.1, tol=1e-5), 0.1)
    np.testing.assert_allclose(uw, jb.sum_rate(H, jb.wmmse.eager(H, 2.0, 0.1, tol=1e-5), 0.1), rtol=1e-4)


def test_second_call_does_not_trace_again(H):
    Hn = np.asarray(H)
    jb.mrt(H, 1.0)
    jb.mrt(Hn, 1.0)  # numpy input: its own entry of jax's cache (placement), the same checks
    n = jb.mrt.compiled._cache_size()
    jb.mrt(H, 3.0)  # new values, same signatures
    jb.mrt(Hn * 2, 1.5)
    assert jb.mrt.compiled._cache_size() == n


def test_value_checks_run_on_every_call_not_only_the_tracing_one(H):
    jb.rzf(H, 1.0, 0.1)  # traced and compiled for this signature
    with pytest.raises(ValueError, match="P must be finite > 0"):
        jb.rzf(H, -1.0, 0.1)
    with pytest.raises(ValueError, match="sigma2 must be finite > 0"):
        jb.rzf(H, 1.0, 0.0)
    bad = np.array(H)
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"H must be finite.*index \(1, 2, 3\)"):
        jb.rzf(bad, 1.0, 0.1)
    # checks of a nested public call on the caller's inputs are replayed too (sca -> wmmse/rzf)
    jb.sca(H, 1.0, 0.1, "sr", max_iter=2)
    with pytest.raises(ValueError, match="P must be finite > 0"):
        jb.sca(H, 0.0, 0.1, "sr", max_iter=2)
    jb.performance(jnp.ones(3), jnp.ones(3))
    with pytest.raises(ValueError, match="non-zero mean"):
        jb.performance(jnp.ones(3), jnp.zeros(3))


def test_static_errors_still_raise_and_name_the_argument(H):
    with pytest.raises(ValueError, match="utility must be one of"):
        jb.sca(H, 1.0, 0.1, "xx")
    with pytest.raises(TypeError, match="H must be a complex array"):
        jb.rzf(jnp.ones((B, K, N)), 1.0)
    with pytest.raises(TypeError):
        jb.rzf(H, "one")  # not array data: the plain function reports it


def test_composes_with_jit_grad_vmap(H):
    # a traced P <= 0 cannot be checked: documented to give zero beams, not an error
    W0 = jax.jit(lambda H, P: jb.rzf(H, P, 0.1))(H, -1.0)
    np.testing.assert_array_equal(np.asarray(W0), 0)
    g = jax.grad(lambda P: jnp.sum(jb.sum_rate(H, jb.rzf(H, P, 0.1), 0.1)))(1.0)
    eps = 1e-2
    fd = (
        jnp.sum(jb.sum_rate(H, jb.rzf(H, 1.0 + eps, 0.1), 0.1))
        - jnp.sum(jb.sum_rate(H, jb.rzf(H, 1.0 - eps, 0.1), 0.1))
    ) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=2e-2)
    Wv = jax.vmap(lambda h: jb.rzf(h, 1.0, 0.1))(H)
    chex.assert_trees_all_close(Wv, jb.rzf(H, 1.0, 0.1), rtol=1e-5, atol=1e-6)


def test_list_arguments():
    Ha = jb.rayleigh(jax.random.key(1), [2], 2, 3)  # a list batch shape: static, made hashable
    chex.assert_shape(Ha, (2, 2, 3))
    W = jb.mrt([[1 + 0j, 0j], [0j, 1 + 0j]], 2.0)  # nested lists are one array, not a tree of scalars
    np.testing.assert_allclose(jnp.sum(jnp.abs(W) ** 2), 2.0, rtol=1e-6)


def test_decorator_rejects_unknown_static_names():
    with pytest.raises(TypeError, match="not parameters"):
        public(static=("nope",))(lambda x: x)


def test_concrete_inputs_inside_a_callers_jit_are_still_checked():
    H = jb.rayleigh(jax.random.key(4), (2,), 2, 3)

    @jax.jit
    def f(x):  # H and P are constants of this trace: the public call sees concrete arguments
        return x * jnp.sum(jb.sum_rate(H, jb.rzf(H, 1.0, 0.1), 0.1))

    assert jnp.isfinite(f(1.0))
    with pytest.raises(ValueError, match="P must be finite > 0"):
        jax.jit(lambda x: x * jnp.sum(jnp.abs(jb.rzf(H, -1.0, 0.1))))(1.0)
