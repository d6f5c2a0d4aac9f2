"""Channel sources (i.i.d. Rayleigh, Sec. VI-A2; spatially correlated; path loss and shadowing) and CSI error
(Sec. VI-B4).

Conventions (``docs/design.md``): a channel ``H`` is a complex array ``(..., K, N)`` whose row
``k`` is ``h_k``, the channel from the N transmit antennas to user k.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core._jit import public


def _is_int(v) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _key(key) -> jax.Array:
    """``key`` if it is a ``jax.random`` key (a typed key array, or the raw ``uint32`` data of
    ``jax.random.PRNGKey``), else a :class:`~jaxbeam.core._checks.DTypeError` naming ``key``."""
    ok = isinstance(key, jax.Array | np.ndarray) and (
        jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) or (key.dtype == np.uint32 and key.ndim >= 1)
    )
    if not ok:
        raise _checks.DTypeError(
            f"key must be a jax.random key (jax.random.key(seed), or the uint32 data of jax.random.PRNGKey(seed)); "
            f"got {_checks._short(key) if not hasattr(key, 'dtype') else _checks._describe(key)}"
        )
    return key


def _complex_dtype(dtype) -> jnp.dtype:
    try:
        dtype = jnp.dtype(dtype) if dtype is not None else jnp.zeros((), jnp.complex64).dtype
    except TypeError:
        raise _checks.DTypeError(f"dtype must be a complex dtype (complex64 or complex128); got {dtype!r}") from None
    if not jnp.issubdtype(dtype, jnp.complexfloating):
        raise _checks.DTypeError(f"dtype must be a complex dtype (complex64 or complex128); got {dtype}")
    # Under jax_enable_x64=False, complex128 silently becomes complex64.
    return jnp.zeros((), dtype).dtype


def _shape_args(batch_shape, K, N) -> tuple[tuple[int, ...], int, int]:
    """Validated ``(batch_shape, K, N)`` of a channel draw (an int batch shape is read as ``(B,)``)."""
    if _is_int(batch_shape):
        batch_shape = (batch_shape,)
    try:
        ok = all(_is_int(b) and b >= 0 for b in batch_shape)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"batch_shape must be an int or a sequence of non-negative ints; got {batch_shape!r}")
    for name, v in (("K", K), ("N", N)):
        if not _is_int(v) or v < 1:
            raise ValueError(f"{name} must be a positive int; got {v!r}")
    return tuple(int(b) for b in batch_shape), int(K), int(N)


def _number(name: str, v, low: float, high: float = np.inf, *, closed: tuple[bool, bool] = (False, False)) -> float:
    """A static real model parameter in ``(low, high)`` (ends included as ``closed`` says), else ``ValueError``."""
    ok = not isinstance(v, bool) and isinstance(v, int | float | np.integer | np.floating) and np.isfinite(v)
    ok = ok and (v >= low if closed[0] else v > low) and (v <= high if closed[1] else v < high)
    if not ok:
        lo, hi = "[" if closed[0] else "(", "]" if closed[1] else ")"
        raise ValueError(f"{name} must be a finite number in {lo}{low:g}, {high:g}{hi}; got {v!r}")
    return float(v)


@public(static=("batch_shape", "K", "N", "dtype"))
def rayleigh(key: jax.Array, batch_shape: Sequence[int] | int, K: int, N: int, *, dtype=jnp.complex64) -> jax.Array:
    r"""Draw i.i.d. Rayleigh-fading channels, ``h_k[n] ~ CN(0, 1)`` (Sec. VI-A2).

    .. math:: H[..., k, n] = (x + j y) / \sqrt{2}, \quad x, y \sim \mathcal{N}(0, 1)

    Args:
      key: a ``jax.random`` key.
      batch_shape: leading batch shape, e.g. ``(B,)`` (an int is read as ``(B,)``; ``()`` for one sample).
      K: number of users (>= 1).
      N: number of transmit antennas (>= 1).
      dtype: complex dtype of the result.

    Returns:
      complex ``(*batch_shape, K, N)``, unit average power per entry.
    """
    key = _key(key)
    batch_shape, K, N = _shape_args(batch_shape, K, N)
    # jax.random.normal with a complex dtype draws CN(0, 1): real and imaginary parts each of variance 1/2.
    return jax.random.normal(key, (*batch_shape, K, N), dtype=_complex_dtype(dtype))


@public()
def csi_error(key: jax.Array, H: ArrayLike, mu_db: ArrayLike) -> jax.Array:
    r"""Estimated CSI with a bounded error, ``h_hat_k = h_k + e_k`` (Sec. VI-B4).

    Each error has an isotropic direction and the exact norm

    .. math:: \|e_k\|^2 = \mu \, \|h_k\|^2, \qquad \mu = 10^{\mu_{dB}/10}.

    Args:
      key: a ``jax.random`` key.
      H: complex ``(..., K, N)`` true channels.
      mu_db: relative error level in dB (the paper uses -25, -23, -21, -19); scalar or per sample ``(...,)``;
        concrete values must be finite (``ValueError``).

    Returns:
      complex ``(..., K, N)`` erroneous channel estimates, same dtype as ``H``.
    """
    key = _key(key)
    H = _checks.complex_kn("H", H)
    mu_in = mu_db
    mu_db = _checks.real_param("mu_db", mu_db, H.shape[:-2]).astype(H.real.dtype)
    _checks.values("mu_db", mu_in)
    mu = 10.0 ** (mu_db / 10.0)
    z = jax.random.normal(key, H.shape, dtype=H.dtype)
    z_norm = jnp.linalg.norm(z, axis=-1, keepdims=True)
    c = _checks.row_scale(H, axes=-1)  # no overflow of ||h_k||^2 for channels near the float range's end
    h_norm = c * jnp.linalg.norm(H / c.astype(H.dtype), axis=-1, keepdims=True)
    scale = jnp.sqrt(mu)[..., None, None] * h_norm / jnp.maximum(z_norm, jnp.finfo(z_norm.dtype).tiny)
    return H + scale * z


@public(static=("batch_shape", "K", "N", "rho", "max_angle_deg", "dtype"))
def correlated(
    key: jax.Array,
    batch_shape: Sequence[int] | int,
    K: int,
    N: int,
    *,
    rho: float = 0.7,
    max_angle_deg: float = 60.0,
    dtype=jnp.complex64,
) -> jax.Array:
    r"""Spatially correlated Rayleigh channels of a half-wavelength ULA: exponential correlation per user,
    steered to the user's direction (Loyka 2001; the "exponential model" with a per-user phase).

    .. math:: h_k = D_k L g_k, \quad R_0[m, n] = \rho^{|m - n|} = L L^T, \quad
              D_k = \mathrm{diag}(e^{j \pi n \sin\theta_k}), \quad g_k \sim \mathcal{CN}(0, I_N),

    so ``E[h_k h_k^H] = R_k`` with ``R_k[m, n] = \rho^{|m-n|} e^{j \pi (m - n) \sin\theta_k}``: unit power per
    entry, correlation ``rho`` between neighbouring antennas, and the users' covariances differ by their
    angle ``theta_k ~ U(-max_angle, max_angle)`` (drawn per sample and user). ``rho = 0`` is i.i.d. Rayleigh.

    Args:
      key: a ``jax.random`` key.
      batch_shape, K, N, dtype: as :func:`rayleigh`.
      rho: neighbouring-antenna correlation in ``[0, 1)``.
      max_angle_deg: the users' angles of departure are uniform in ``[-max_angle_deg, max_angle_deg]``; in
        ``[0, 90]``.

    Returns:
      complex ``(*batch_shape, K, N)``.
    """
    key = _key(key)
    batch_shape, K, N = _shape_args(batch_shape, K, N)
    rho = _number("rho", rho, 0.0, 1.0, closed=(True, False))
    max_angle = np.deg2rad(_number("max_angle_deg", max_angle_deg, 0.0, 90.0, closed=(True, True)))
    dtype = _complex_dtype(dtype)
    n = np.arange(N)
    L = np.linalg.cholesky(rho ** np.abs(n[:, None] - n[None, :]).astype(np.float64))  # R_0 = L L^T
    k_g, k_a = jax.random.split(key)
    G = jax.random.normal(k_g, (*batch_shape, K, N), dtype=dtype)
    theta = jax.random.uniform(k_a, (*batch_shape, K, 1), minval=-max_angle, maxval=max_angle)
    phase = jnp.pi * jnp.asarray(n, theta.dtype) * jnp.sin(theta)  # (..., K, N)
    steer = jax.lax.complex(jnp.cos(phase), jnp.sin(phase)).astype(dtype)
    return steer * (G @ jnp.asarray(L.T, dtype))  # row k: (L g_k)^T, then D_k


@public(static=("batch_shape", "K", "N", "radius", "min_distance", "exponent", "shadowing_db", "dtype"))
def pathloss(
    key: jax.Array,
    batch_shape: Sequence[int] | int,
    K: int,
    N: int,
    *,
    radius: float = 250.0,
    min_distance: float = 35.0,
    exponent: float = 3.76,
    shadowing_db: float = 8.0,
    dtype=jnp.complex64,
) -> jax.Array:
    r"""Rayleigh channels with path loss and log-normal shadowing: users dropped uniformly (by area) in a cell.

    .. math:: h_k = \sqrt{\beta_k}\, g_k, \quad \beta_k = (d_k / r)^{-\eta}\, 10^{s_k / 10},
              \quad s_k \sim \mathcal{N}(0, \sigma_{sh}^2), \quad g_k \sim \mathcal{CN}(0, I_N),

    with ``d_k`` the distance of user k, uniform over the annulus ``min_distance <= d <= r``. **SNR
    convention:** the gain is normalised at the cell edge (``beta = 1`` at ``d = r`` without shadowing), so
    ``P / sigma2`` is the average SNR per antenna of a cell-edge user; nearer users are stronger by
    ``(r / d)^eta`` (32.1 dB at ``d = 35`` m with the defaults, 3GPP-like urban macro values: eta = 3.76,
    8 dB shadowing).

    Args:
      key: a ``jax.random`` key.
      batch_shape, K, N, dtype: as :func:`rayleigh`.
      radius: cell radius r [m] (> min_distance).
      min_distance: the closest a user can be [m] (> 0).
      exponent: path-loss exponent eta (> 0).
      shadowing_db: standard deviation of the shadowing [dB] (>= 0).

    Returns:
      complex ``(*batch_shape, K, N)``.
    """
    key = _key(key)
    batch_shape, K, N = _shape_args(batch_shape, K, N)
    d0 = _number("min_distance", min_distance, 0.0)
    r = _number("radius", radius, d0)
    eta = _number("exponent", exponent, 0.0)
    sh = _number("shadowing_db", shadowing_db, 0.0, closed=(True, False))
    dtype = _complex_dtype(dtype)
    k_g, k_d, k_s = jax.random.split(key, 3)
    rdtype = jnp.finfo(dtype).dtype
    u = jax.random.uniform(k_d, (*batch_shape, K, 1), rdtype)
    d = jnp.sqrt(d0**2 + u * (r**2 - d0**2))  # uniform over the annulus' area
    gain_db = -10.0 * eta * jnp.log10(d / r) + sh * jax.random.normal(k_s, d.shape, rdtype)
    beta = 10.0 ** (gain_db / 10.0)
    return jnp.sqrt(beta).astype(dtype) * jax.random.normal(k_g, (*batch_shape, K, N), dtype=dtype)


CHANNELS = {"rayleigh": rayleigh, "correlated": correlated, "pathloss": pathloss}
"""The channel sources of the functional core by name (``jaxbeam.data.sionna`` adds Sionna's 3GPP models)."""


def channel_params(name: str, **params) -> dict:
    """The full parameter record of source ``name`` (its defaults updated by ``params``), as recorded with a
    data set; ``ValueError`` for an unknown name or parameter."""
    if name not in CHANNELS:
        raise ValueError(f"channel must be one of {tuple(CHANNELS)}; got {name!r}")
    sig = inspect.signature(CHANNELS[name])
    defaults = {
        k: p.default for k, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and k != "dtype"
    }
    unknown = set(params) - set(defaults)
    if unknown:
        raise ValueError(f"channel {name!r} has no parameter(s) {sorted(unknown)}; its parameters: {sorted(defaults)}")
    return {**defaults, **params}


def draw_channels(name: str, key: jax.Array, batch_shape, K: int, N: int, *, dtype=jnp.complex64, **params):
    """``H`` complex ``(*batch_shape, K, N)`` from source ``name`` of :data:`CHANNELS` with ``params``."""
    return CHANNELS[name](key, batch_shape, K, N, dtype=dtype, **channel_params(name, **params))
