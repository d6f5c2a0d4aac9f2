"""The guard against Linux's memory-map limit (jaxbeam.jobs.compiled), which keeps a long test worker or a
long experiment process from crashing inside XLA:CPU, and the test suite's use of it (tests/conftest.py)."""

import conftest
import jax
import jax.numpy as jnp
import pytest

from jaxbeam.jobs import compiled


def test_programs_are_dropped_only_past_the_share_of_the_limit():
    f = jax.jit(lambda x: jnp.sin(x) + 1)
    f(jnp.ones(3))
    assert f._cache_size() == 1
    assert not compiled.release_compiled_programs(0.5, limit=10**9)
    assert f._cache_size() == 1
    if compiled.mapped_regions() is None:
        pytest.skip("no /proc/self/maps here")
    assert compiled.release_compiled_programs(0.5, limit=2)  # any process holds more than one mapping
    assert f._cache_size() == 0


def test_the_suite_drops_them_after_a_test(monkeypatch):
    if compiled.mapped_regions() is None:
        pytest.skip("no /proc/self/maps here")
    f = jax.jit(lambda x: jnp.cos(x) + 1)
    f(jnp.ones(3))
    conftest.pytest_runtest_teardown(None, nextitem=object())  # far below half the real limit: kept
    assert f._cache_size() == 1
    monkeypatch.setattr(compiled, "_LIMIT_FILE", type(compiled._LIMIT_FILE)(__file__))  # not a number: unknown
    assert compiled.map_limit() is None
    monkeypatch.setattr(compiled, "map_limit", lambda: 2)
    conftest.pytest_runtest_teardown(None, nextitem=object())
    assert f._cache_size() == 0


def test_an_executable_holds_memory_maps_and_dropping_it_returns_them():
    """Why the guard exists: compiled programs hold mappings until JAX's caches let them go."""
    if compiled.mapped_regions() is None:
        pytest.skip("no /proc/self/maps here")
    jax.clear_caches()
    before = compiled.mapped_regions()
    fs = [jax.jit(lambda x, i=i: jnp.sin(x) * i + jnp.cumsum(x) ** 2) for i in range(20)]  # kept alive
    for f in fs:
        f(jnp.ones(4)).block_until_ready()
    grown = compiled.mapped_regions() - before
    assert grown >= 20, grown  # at least one mapping per executable (3-24 with jaxlib 0.10)
    jax.clear_caches()
    assert compiled.mapped_regions() - before < grown / 4


def test_a_bad_fraction_is_refused():
    with pytest.raises(ValueError, match="fraction"):
        compiled.release_compiled_programs(0.0)
