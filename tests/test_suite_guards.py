"""The test suite's own guards (tests/conftest.py): the memory-map watch that keeps a long xdist worker from
crashing inside XLA:CPU."""

import conftest
import jax
import jax.numpy as jnp


def test_many_maps_drop_the_compiled_programs(monkeypatch):
    f = jax.jit(lambda x: jnp.sin(x) + 1)
    f(jnp.ones(3))
    assert f._cache_size() == 1
    conftest.pytest_runtest_teardown(None, nextitem=object())  # far below half the limit: kept
    assert f._cache_size() == 1
    monkeypatch.setattr(conftest, "_MAP_LIMIT", 2)  # any process holds more than one mapping
    conftest.pytest_runtest_teardown(None, nextitem=object())
    assert f._cache_size() == 0


def test_an_executable_holds_memory_maps_and_dropping_it_returns_them():
    """Why the watch exists: compiled programs hold mappings until JAX's caches let them go."""
    if not conftest._MAP_LIMIT:
        return  # not Linux
    count = lambda: conftest._MAPS.read_bytes().count(b"\n")  # noqa: E731
    jax.clear_caches()
    before = count()
    fs = [jax.jit(lambda x, i=i: jnp.cos(x) * i) for i in range(20)]
    for f in fs:
        f(jnp.ones(2)).block_until_ready()
    grown = count() - before
    assert grown >= 20, grown  # at least one mapping per executable (3-24 with jaxlib 0.10)
    jax.clear_caches()
    assert count() - before < grown / 4
