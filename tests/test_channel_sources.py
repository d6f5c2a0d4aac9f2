"""Channel sources of the functional core (#19): statistics against closed forms, determinism, bad arguments."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbeam as jb
from jaxbeam.core.channels import CHANNELS, channel_params, draw_channels


def test_correlated_covariance_is_the_exponential_model():
    """At angle 0 every user has ``R[m, n] = rho^|m - n|``: the sample covariance over 40,000 draws."""
    N, rho = 5, 0.8
    H = np.asarray(jb.correlated(jax.random.key(0), (20000,), 2, N, rho=rho, max_angle_deg=0.0))
    h = H.reshape(-1, N)
    R = np.einsum("sm,sn->mn", h, h.conj()) / len(h)
    expect = rho ** np.abs(np.arange(N)[:, None] - np.arange(N)[None, :])
    np.testing.assert_allclose(R, expect, atol=0.03)
    chex.assert_type(H, np.complex64)
    # rho = 0: i.i.d. CN(0, 1) entries (the same statistics as jb.rayleigh)
    H0 = np.asarray(jb.correlated(jax.random.key(1), (20000,), 1, 3, rho=0.0)).reshape(-1, 3)
    np.testing.assert_allclose(np.einsum("sm,sn->mn", H0, H0.conj()) / len(H0), np.eye(3), atol=0.03)


def test_correlated_users_are_steered_to_their_own_angle():
    """Near rho = 1 a user's channel is a scalar times a ULA steering vector ``e^{j pi n sin(theta)}``, with
    theta within the allowed range and different per user."""
    H = np.asarray(jb.correlated(jax.random.key(2), (500,), 4, 8, rho=0.99999, max_angle_deg=30.0))
    strong = np.abs(H).min(-1) > 0.3  # (the innovation sqrt(1 - rho^2) g is then negligible)
    assert strong.mean() > 0.5
    step = (H[..., 1:] / H[..., :-1])[strong]  # e^{j pi sin(theta_k)} for every neighbouring pair
    np.testing.assert_allclose(np.abs(step), 1.0, atol=0.05)
    sin_theta = np.angle(step).mean(-1) / np.pi
    assert np.all(np.abs(sin_theta) <= np.sin(np.deg2rad(30.0)) + 0.02)
    assert np.std(sin_theta) > 0.2  # spread over the range, not one angle
    np.testing.assert_allclose(step, np.broadcast_to(step[..., :1], step.shape), atol=0.1)  # the same along the array


def test_pathloss_gains_follow_the_cell_geometry():
    """Without shadowing ``beta = (d / r)^-eta`` with d uniform over the annulus' area:
    ``P(beta >= b) = (r^2 b^(-2/eta) - d0^2) / (r^2 - d0^2)``; measured through ``||h_k||^2 / N`` at N = 512."""
    r, d0, eta = 200.0, 20.0, 3.5
    H = np.asarray(jb.pathloss(jax.random.key(3), (400,), 5, 512, radius=r, min_distance=d0, exponent=eta,
                               shadowing_db=0.0))  # fmt: skip
    beta = np.mean(np.abs(H) ** 2, -1).ravel()
    assert beta.min() > 0.9 and beta.max() < 1.1 * (r / d0) ** eta  # the edge and the closest point
    for b in (2.0, 10.0, 100.0):
        expect = (r**2 * b ** (-2 / eta) - d0**2) / (r**2 - d0**2)
        assert np.mean(beta >= b) == pytest.approx(expect, abs=0.04)
    # shadowing adds N(0, sigma^2) in dB: the spread of 10 log10(beta) about its mean grows accordingly
    Hs = np.asarray(jb.pathloss(jax.random.key(3), (400,), 5, 512, radius=r, min_distance=d0, exponent=eta,
                                shadowing_db=8.0))  # fmt: skip
    var_s = np.var(10 * np.log10(np.mean(np.abs(Hs) ** 2, -1)))
    var_0 = np.var(10 * np.log10(beta))
    assert var_s - var_0 == pytest.approx(64.0, rel=0.15)


def test_registry_records_parameters_and_draws_deterministically():
    assert set(CHANNELS) == {"rayleigh", "correlated", "pathloss"}
    assert channel_params("rayleigh") == {}
    rec = channel_params("pathloss", exponent=3.0)
    assert rec == {"radius": 250.0, "min_distance": 35.0, "exponent": 3.0, "shadowing_db": 8.0}
    for name in CHANNELS:
        a = draw_channels(name, jax.random.key(4), (3,), 2, 4)
        chex.assert_shape(a, (3, 2, 4))
        chex.assert_trees_all_equal(a, draw_channels(name, jax.random.key(4), (3,), 2, 4))
        with jax.enable_x64(True):
            assert draw_channels(name, jax.random.key(4), 2, 2, 4, dtype=jnp.complex128).dtype == jnp.complex128
    chex.assert_trees_all_equal(
        draw_channels("rayleigh", jax.random.key(5), 2, 3, 4), jb.rayleigh(jax.random.key(5), 2, 3, 4)
    )
    with pytest.raises(ValueError, match="channel must be one of"):
        channel_params("umi")
    with pytest.raises(ValueError, match=r"has no parameter\(s\) \['rho'\]"):
        draw_channels("pathloss", jax.random.key(0), 2, 2, 4, rho=0.5)


@pytest.mark.parametrize(
    "fn,kw,name",
    [
        (jb.correlated, {"rho": 1.0}, "rho"),
        (jb.correlated, {"rho": -0.1}, "rho"),
        (jb.correlated, {"max_angle_deg": 91.0}, "max_angle_deg"),
        (jb.pathloss, {"radius": 30.0}, "radius"),  # below min_distance
        (jb.pathloss, {"min_distance": 0.0}, "min_distance"),
        (jb.pathloss, {"exponent": float("nan")}, "exponent"),
        (jb.pathloss, {"shadowing_db": -1.0}, "shadowing_db"),
        (jb.pathloss, {"radius": True}, "radius"),
    ],
)
def test_bad_parameters_name_the_argument(fn, kw, name):
    with pytest.raises(ValueError, match=f"^{name} must be"):
        fn(jax.random.key(0), (2,), 2, 4, **kw)
    with pytest.raises(ValueError, match="K must be a positive int"):
        fn(jax.random.key(0), (2,), 0, 4)
