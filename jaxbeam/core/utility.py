r"""SINR, rates and the system utilities SR / MR / EE (BERT4beam eqs. 2-3) and the metric (eq. 31).

Effective gains follow ``docs/design.md``: ``G[..., k, i] = h_k^H w_i``. Rates are in bit/s/Hz.
Absent users (``mask[..., k] == False``) have their beams removed before anything is computed, get
rate 0, and count neither in the sum, nor in the min, nor in the transmit power.

``sigma2`` follows the noise rule of :mod:`jaxbeam.core._checks`: it broadcasts (numpy rules, from the right)
against the per-user shape ``(..., K)``: a scalar, per user ``(K,)`` or ``(..., K)``, per sample
``(..., 1)``.

All functions are pure, jit/vmap/grad-able, accept any leading batch shape (also an empty one,
``B = 0``), and have finite gradients at ``W = 0``. Concrete arguments are checked eagerly
(:mod:`jaxbeam.core._checks`): NaN/Inf in ``H`` or ``W``, ``sigma2 <= 0``, ``Pc < 0`` raise ``ValueError``.
Traced edge values: the SINR denominator ``interference + sigma2`` is floored at the smallest normal
float, so a traced ``sigma2 <= 0`` gives finite (very large) rates rather than inf/NaN; the EE
denominator ``||W||^2 + Pc`` likewise, so ``Pc = 0`` at ``W = 0`` gives EE = 0. Traced NaN entries
propagate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core._jit import public

TASKS = _checks.TASKS  # ("sr", "mr", "ee"): task ids 0, 1, 2


def _prepare(H, W, sigma2, mask):
    H = _checks.complex_kn("H", H)
    W = _checks.complex_kn("W", W)
    _checks.same_shape("H", H, "W", W)
    batch = jnp.broadcast_shapes(H.shape[:-2], W.shape[:-2])
    K = H.shape[-2]
    mask = _checks.user_mask(mask, batch, K)
    sigma2 = _checks.noise("sigma2", sigma2, batch, K)
    rdtype = jnp.result_type(H.real.dtype, W.real.dtype)
    if mask is not None:
        W = jnp.where(mask[..., None], W, 0)
    return H, W, sigma2.astype(rdtype), mask, batch


@public()
def gains(H: ArrayLike, W: ArrayLike) -> jax.Array:
    r"""Effective channel gains ``G[..., k, i] = h_k^H w_i`` (the terms of eq. 2).

    Args:
      H: complex ``(..., K, N)`` channels.
      W: complex ``(..., K, N)`` beamformers (row ``i`` is ``w_i``).

    Returns:
      complex ``(..., K, K)``.
    """
    H = _checks.complex_kn("H", H)
    W = _checks.complex_kn("W", W)
    _checks.same_shape("H", H, "W", W)
    return _gains(H, W)


def _gains(H, W):
    return jnp.einsum("...kn,...in->...ki", jnp.conj(H), W)


def _sinr(H, W, sigma2, mask):
    signal, interference, sigma2 = _signal_interference(H, W, sigma2)
    sinr = signal / jnp.maximum(interference + sigma2, jnp.finfo(signal.dtype).tiny)  # module docstring
    if mask is not None:
        sinr = jnp.where(mask, sinr, 0.0)
    return sinr


def _signal_interference(H, W, sigma2):
    """``(signal, interference, noise)``, each ``(..., K)``: ``|h_k^H w_k|^2``, ``sum_{i != k} |h_k^H w_i|^2`` and
    ``sigma2``, all divided by the same per-sample ``c^2`` (the SINR's parts, scaled for range)."""
    G = _gains(H, W)
    # SINR_k(G / c, sigma2 / c^2) == SINR_k(G, sigma2) for any c > 0: dividing by the largest |G| per sample
    # keeps |G|^2 finite for inputs near the float range's end (x 1e30); sigma2 / c^2 may underflow to 0 there,
    # which is the right limit (noise negligible against the received powers).
    c = _checks.row_scale(G)
    G = G / c.astype(G.dtype)
    sigma2 = sigma2 / (c[..., 0] ** 2)
    G2 = G.real**2 + G.imag**2  # |h_k^H w_i|^2 written so its gradient is finite at G = 0 (abs's is not)
    K = G2.shape[-1]
    eye = jnp.eye(K, dtype=bool)
    signal = jnp.diagonal(G2, axis1=-2, axis2=-1)
    interference = jnp.sum(jnp.where(eye, 0.0, G2), axis=-1)  # not total - signal: no cancellation
    return signal, interference, jnp.broadcast_to(sigma2, signal.shape)


@public()
def sinr(H: ArrayLike, W: ArrayLike, sigma2: ArrayLike = 0.1, mask: ArrayLike | None = None) -> jax.Array:
    r"""Signal-to-interference-plus-noise ratio of every user (the argument of the log in eq. 2).

    .. math:: \mathrm{SINR}_k = \frac{|h_k^H w_k|^2}{\sum_{i \ne k} |h_k^H w_i|^2 + \sigma_k^2}

    Args:
      H: complex ``(..., K, N)`` channels.
      W: complex ``(..., K, N)`` beamformers, row ``k`` is ``w_k`` [sqrt(W)].
      sigma2: noise power [W] (> 0), broadcast against ``(..., K)`` (module docstring): scalar, per user
        ``(K,)`` or ``(..., K)``, per sample ``(..., 1)``.
      mask: optional bool ``(..., K)``, True for users that are present.

    Returns:
      float ``(..., K)`` (linear, not dB); 0 for absent users.
    """
    H, W, sigma2, mask, _ = _prepare(H, W, sigma2, mask)
    return _sinr(H, W, sigma2, mask)


@public()
def rates(H: ArrayLike, W: ArrayLike, sigma2: ArrayLike = 0.1, mask: ArrayLike | None = None) -> jax.Array:
    r"""Achievable rate of every user, eq. 2: ``R_k = log2(1 + SINR_k)`` [bit/s/Hz].

    Args: as :func:`sinr`.

    Returns:
      float ``(..., K)``; 0 for absent users.
    """
    return jnp.log1p(sinr(H, W, sigma2, mask)) / jnp.log(2.0)


@public()
def sum_rate(H: ArrayLike, W: ArrayLike, sigma2: ArrayLike = 0.1, mask: ArrayLike | None = None) -> jax.Array:
    r"""Sum rate (SR), ``U = sum_k R_k`` (Sec. III-A) [bit/s/Hz].

    Args: as :func:`sinr`.

    Returns:
      float ``(...,)``.
    """
    return jnp.sum(rates(H, W, sigma2, mask), axis=-1)


@public()
def min_rate(H: ArrayLike, W: ArrayLike, sigma2: ArrayLike = 0.1, mask: ArrayLike | None = None) -> jax.Array:
    r"""Min rate (MR), ``U = min_k R_k`` over the present users (Sec. III-A) [bit/s/Hz].

    The gradient flows to the worst user(s) only (the subgradient of ``min``).

    Args: as :func:`sinr`.

    Returns:
      float ``(...,)``; 0 for a sample with no present user (an all-False mask row).
    """
    r = rates(H, W, sigma2, mask)
    if mask is None:
        return jnp.min(r, axis=-1)
    mask = jnp.broadcast_to(mask, r.shape)
    m = jnp.min(jnp.where(mask, r, jnp.inf), axis=-1)
    return jnp.where(jnp.any(mask, axis=-1), m, 0.0)


@public()
def transmit_power(W: ArrayLike, mask: ArrayLike | None = None) -> jax.Array:
    r"""Total transmit power ``||W||_F^2 = sum_k ||w_k||^2`` of the present users [W].

    Args:
      W: complex ``(..., K, N)`` beamformers.
      mask: optional bool ``(..., K)``.

    Returns:
      float ``(...,)``.
    """
    W = _checks.complex_kn("W", W)
    mask = _checks.user_mask(mask, W.shape[:-2], W.shape[-2])
    p = jnp.sum(W.real**2 + W.imag**2, axis=-1)
    if mask is not None:
        p = jnp.where(mask, p, 0.0)
    return jnp.sum(p, axis=-1)


@public()
def energy_efficiency(
    H: ArrayLike,
    W: ArrayLike,
    sigma2: ArrayLike = 0.1,
    Pc: ArrayLike = 0.5,
    mask: ArrayLike | None = None,
) -> jax.Array:
    r"""Energy efficiency (EE), Sec. III-A [bit/s/Hz/W].

    .. math:: U = \frac{\sum_k R_k}{\sum_k \|w_k\|^2 + P_C}

    Args:
      H, W, sigma2, mask: as :func:`sinr`.
      Pc: circuit power [W] (>= 0), scalar or per sample ``(...,)``.

    Returns:
      float ``(...,)``; the denominator is floored at the smallest normal float (module docstring).
    """
    H, W, sigma2, mask, batch = _prepare(H, W, sigma2, mask)
    Pc = _checks.real_param("Pc", Pc, batch, low=0.0, strict=False, what="circuit power in W").astype(sigma2.dtype)
    sr = jnp.sum(jnp.log1p(_sinr(H, W, sigma2, mask)), axis=-1) / jnp.log(2.0)
    return sr / jnp.maximum(jnp.sum(W.real**2 + W.imag**2, axis=(-2, -1)) + Pc, jnp.finfo(sr.dtype).tiny)


@public(static=("name",))
def utility(
    name: str,
    H: ArrayLike,
    W: ArrayLike,
    sigma2: ArrayLike = 0.1,
    Pc: ArrayLike = 0.5,
    mask: ArrayLike | None = None,
) -> jax.Array:
    r"""The system utility ``U`` of problem (3) selected by name: ``"sr"``, ``"mr"`` or ``"ee"``.

    Args:
      name: one of :data:`TASKS`.
      H, W, sigma2, Pc, mask: as :func:`energy_efficiency` (``Pc`` is used by ``"ee"`` only, and checked for
        every name: a negative circuit power is an error whatever the utility).

    Returns:
      float ``(...,)``.
    """
    _checks.name_in("name", name, TASKS)
    if name != "ee":  # energy_efficiency checks its own Pc
        H_, W_ = _checks.complex_kn("H", H), _checks.complex_kn("W", W)
        _checks.same_shape("H", H_, "W", W_)
        batch = jnp.broadcast_shapes(H_.shape[:-2], W_.shape[:-2])
        _checks.real_param("Pc", Pc, batch, low=0.0, strict=False, what="circuit power in W")
    if name == "sr":
        return sum_rate(H, W, sigma2, mask)
    if name == "mr":
        return min_rate(H, W, sigma2, mask)
    if name == "ee":
        return energy_efficiency(H, W, sigma2, Pc, mask)
    raise ValueError(f"name must be one of {TASKS}; got {name!r}")


@public()
def performance(u_model: ArrayLike, u_reference: ArrayLike) -> jax.Array:
    r"""Performance metric, eq. 31: ``mean(U_model) / mean(U_reference) * 100`` [%].

    Args:
      u_model: utilities of the evaluated method over a test set, any shape.
      u_reference: utilities of the reference (label solver) over the same set.

    Returns:
      float scalar, in percent.

    Raises:
      ValueError: different shapes, no sample, NaN/Inf entries, or a reference mean of 0 (the metric is
        undefined), for concrete inputs; DTypeError (a TypeError) for complex or bool inputs. Traced
        inputs: a zero reference mean gives NaN (undefined, not a silent inf).
    """
    u_model_in, u_reference_in = u_model, u_reference
    u_model = _checks._real("u_model", u_model)
    u_reference = _checks._real("u_reference", u_reference)
    if u_model.shape != u_reference.shape:
        raise ValueError(
            f"u_model and u_reference must have the same shape (one value per test sample); "
            f"got {u_model.shape} and {u_reference.shape}"
        )
    if u_model.size == 0:
        raise ValueError("u_model and u_reference must hold at least one test sample; got empty arrays")
    _checks.values("u_model", u_model_in)
    _checks.values("u_reference", u_reference_in)
    _checks.nonzero_mean("u_reference", u_reference_in)
    ref = jnp.mean(u_reference)
    return jnp.where(ref != 0, 100.0 * jnp.mean(u_model) / jnp.where(ref != 0, ref, 1.0), jnp.nan)
