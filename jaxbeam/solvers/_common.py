r"""Shared pieces of the label solvers (functional core: arrays in, arrays out).

All solvers work in the K-dimensional span of the channels. Every optimal beam of problem (3) is a
combination of the users' channels, ``w_k = sum_m Y[m, k] h~_m`` (with ``h~_m`` the noise-normalised
channel ``h_m / sigma_m``), so the solvers iterate on the K x K coefficient matrix ``Y`` and the Gram
matrix ``Gm[k, i] = h~_k^H h~_i`` instead of N x N matrices:

* effective gains ``h~_k^H w_i = (Gm Y)[k, i]``,
* transmit power ``||W||_F^2 = tr(Y^H Gm Y)``,
* beams ``W = Y^T H~`` (row ``k`` is ``w_k``).

Dividing ``h_k`` by ``sigma_k`` turns every SINR of eq. (2) into one with unit noise, so per-user noise
powers cost nothing extra.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
from jax import lax

from jaxbeam.core import _checks
from jaxbeam.core.linalg import bmm, gains  # noqa: F401 (re-exported: the solvers use C.bmm, C.gains)


def prepare(H, P, sigma2, mask, weights=None):
    """Validate and normalise: returns ``Hn (..., K, N), P (...,), mask_f (..., K) real, weights (..., K)``.

    ``Hn = H / sqrt(sigma2_k)`` with absent users' rows zeroed; ``mask_f`` is 1.0 for present users.
    This is the entry of every solver (``wmmse``, ``sca``, ``maxmin_exact``), so its rules are theirs:

    * ``sigma2`` broadcasts against the per-user shape ``(..., K)`` (the noise rule of
      :mod:`jaxbeam.core._checks`: scalar, per user ``(K,)`` or ``(..., K)``, per sample ``(..., 1)``);
    * concrete ``P`` must be finite and > 0, concrete ``sigma2`` > 0, concrete ``weights`` finite and >= 0,
      concrete ``H`` finite (``ValueError`` naming the argument); an empty batch is fine;
    * traced ``P <= 0`` or NaN: the sample has no present user (``mask_f = 0``, ``P = 1`` internally), so
      every solver returns zero beams for it;
    * traced ``sigma2 <= 0`` or NaN: floored at ``eps P mean_k ||h_k||^2`` (SNR at most ``1 / eps``,
      :func:`jaxbeam.core._checks.floor_noise`), a finite high-SNR problem.
    """
    H = _checks.complex_kn("H", H)
    batch, K = H.shape[:-2], H.shape[-2]
    rdtype = H.real.dtype
    mask = _checks.user_mask(mask, batch, K)
    P = _checks.real_param("P", P, batch, low=0.0, what="power budget in W").astype(rdtype)
    sigma2 = _checks.noise("sigma2", sigma2, batch, K).astype(rdtype)
    mask_f = jnp.ones(batch + (K,), rdtype) if mask is None else jnp.broadcast_to(mask, batch + (K,)).astype(rdtype)
    P = jnp.broadcast_to(P, batch)
    ok = P > 0  # traced P <= 0 or NaN: switch the sample off (zero beams)
    mask_f = mask_f * ok[..., None].astype(rdtype)
    P = jnp.where(ok, P, 1.0)
    if weights is None:
        weights = jnp.ones(batch + (K,), rdtype)
    else:
        weights = jnp.broadcast_to(_checks.weights("weights", weights, batch, K).astype(rdtype), batch + (K,))
        weights = jnp.where(weights > 0, weights, 0.0)  # traced negative or NaN weights count as 0
    gain = jnp.sum(abs2(H) * mask_f[..., None], axis=(-2, -1)) / jnp.maximum(jnp.sum(mask_f, -1), 1.0)
    sigma2 = _checks.floor_noise(jnp.broadcast_to(sigma2, batch + (K,)), (P * gain)[..., None])
    Hn = H * (mask_f / jnp.sqrt(sigma2))[..., None].astype(H.dtype)
    return Hn, P, mask_f, weights * mask_f


def gram(Hn):
    """``Gm[..., k, i] = h_k^H h_i`` (K x K, Hermitian PSD)."""
    return gains(Hn, Hn)


def mh(A):
    """Conjugate transpose of the last two axes."""
    return jnp.conj(jnp.swapaxes(A, -1, -2))


def abs2(x):
    return x.real**2 + x.imag**2


def power_of(Y, Gm):
    """``||W||_F^2 = tr(Y^H Gm Y)`` per sample (real)."""
    return jnp.sum((jnp.conj(Y) * bmm(Gm, Y)).real, axis=(-2, -1))


def sinr_of(Y, Gm, mask_f):
    """SINR of each user (unit noise after normalisation) from the coefficients: ``(..., K)``."""
    G2 = abs2(bmm(Gm, Y))  # G2[k, i] = |h~_k^H w_i|^2
    signal = jnp.diagonal(G2, axis1=-2, axis2=-1)
    interference = jnp.sum(G2, axis=-1) - signal
    return mask_f * signal / (jnp.maximum(interference, 0.0) + 1.0)


def rates_of(Y, Gm, mask_f):
    return jnp.log1p(sinr_of(Y, Gm, mask_f)) / jnp.log(2.0)


def beams(Y, Hn):
    """``W = Y^T H~``: row ``k`` is ``w_k = sum_m Y[m, k] h~_m`` (broadcast-multiply-sum, as :func:`bmm`)."""
    return jnp.sum(Y[..., :, :, None] * Hn[..., :, None, :], axis=-3)


def min_over_present(x, mask_f):
    return jnp.min(jnp.where(mask_f > 0, x, jnp.inf), axis=-1)


def compacting_while(step, state, args, max_iter: int, *, axis: int = 0, shrink: int = 8, min_size: int = 64):
    """``while i < max_iter and not all(state.converged): state = step(state, args)``, with compaction.

    A batched ``while_loop`` costs as much per iteration for a converged (frozen) sample as for a
    running one, and runs until the slowest sample is done. Here, once at most ``B / shrink`` samples
    are still running, they are gathered into a batch of that static size which continues alone
    (recursively, down to ``min_size``), and the results are scattered back. ``step`` must treat each
    sample independently and freeze converged ones; each sample then gets exactly the iterations it
    would get in a plain loop.

    Args:
      step: ``(state, args) -> state``; ``state.converged`` is bool ``(B,)``.
      state, args: pytrees whose leaves all have the batch axis ``B`` at ``axis``.
      max_iter: cap on the total number of iterations.
      axis: the batch axis of every leaf: ``0`` (leading) or ``-1`` (trailing, "batch-minor").

    Returns:
      the final state.
    """
    if axis not in (0, -1):
        raise ValueError(f"axis must be 0 or -1; got {axis!r}")
    B = state.converged.shape[0]
    sizes = [B]
    while sizes[-1] // shrink >= min_size:
        sizes.append(sizes[-1] // shrink)

    def run(level, i, state, args):
        stop_at = sizes[level + 1] if level + 1 < len(sizes) else 0

        def cond(c):
            i, s = c
            return (i < max_iter) & (jnp.sum(~s.converged) > stop_at)

        i, state = lax.while_loop(cond, lambda c: (c[0] + 1, step(c[1], args)), (i, state))
        if stop_at == 0:
            return i, state
        idx = jnp.argsort(state.converged, stable=True)[:stop_at]  # the running samples first
        take = lambda x: jnp.take(x, idx, axis=axis)
        put = lambda x, y: x.at[idx].set(y) if axis == 0 else x.at[..., idx].set(y)
        i, sub = run(level + 1, i, jax.tree.map(take, state), jax.tree.map(take, args))
        return i, jax.tree.map(put, state, sub)

    return run(0, jnp.zeros((), jnp.int32), state, args)[1]


def check_tol(tol, name="tol"):
    """``tol`` must be a finite real number in (0, 1): a relative tolerance."""
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < tol < 1:
        raise ValueError(f"{name} must be a relative tolerance, a float in (0, 1); got {tol!r}")
    return float(tol)


def check_count(value, name, minimum):
    """``value`` must be a Python int >= ``minimum`` (an iteration or step count)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)
