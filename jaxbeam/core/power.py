r"""Power adapters: the GPA of eq. 15, the Euclidean projection onto the power ball (3b), their per-antenna
counterparts (``sum_k |W[k, n]|^2 <= P_n``), and the max-min (SINR-balancing) power allocation for given beam
directions.

Norms are computed without overflow or underflow: ``W`` is divided by its largest entry magnitude
(:func:`jaxbeam.core._checks.row_scale`) before squaring, so ``gpa(c W, P)`` is exact for ``c`` up to the float
range's ends (e.g. ``c = 1e30`` in float32, where ``||W||_F^2`` itself overflows).

Concrete ``P`` must be finite and > 0 (``ValueError``); a traced ``P <= 0`` or NaN gives zero beams. Concrete
``W``/``H`` must be finite. ``sigma2`` follows the noise rule of :mod:`jaxbeam.core._checks`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxbeam.core import _checks
from jaxbeam.core._jit import public
from jaxbeam.core.linalg import gains


def _masked_scaled(W, mask):
    """Masked ``W``, its per-sample scale ``c (..., 1, 1)`` and ``||W / c||_F^2 (...,)``."""
    W = _checks.complex_kn("W", W)
    mask = _checks.user_mask(mask, W.shape[:-2], W.shape[-2])
    if mask is not None:
        W = jnp.where(mask[..., None], W, 0)
    c = _checks.row_scale(W)
    Ws = W / c.astype(W.dtype)
    return W, c[..., 0, 0], jnp.sum(Ws.real**2 + Ws.imag**2, axis=(-2, -1))


def _safe_P(P):
    """Traced ``P <= 0`` or NaN -> 0 (zero beams), and a finite value to divide by."""
    ok = P > 0
    return jnp.where(ok, P, 0.0), jnp.where(ok, P, 1.0)


POWER_CONSTRAINTS = ("total", "antenna")
"""The power constraints a ``power=`` argument selects: one budget ``||W||_F^2 <= P`` (default) or ``P / N``
per antenna, ``sum_k |W[k, n]|^2 <= P / N`` for every antenna n."""


def split_budget(X, P, name: str = "W") -> jax.Array:
    """``P / N`` for every antenna, ``(..., N)``, from the total budget ``P`` (checked as ``P``) of the
    complex ``(..., K, N)`` array ``X`` (checked as ``name``)."""
    X = _checks.complex_kn(name, X)
    batch, N = X.shape[:-2], X.shape[-1]
    P = _checks.real_param("P", P, batch, low=0.0, what="power budget in W").astype(X.real.dtype)
    return jnp.broadcast_to(P[..., None] / N, (*batch, N))


@public(static=("power",))
def feasible(
    W: ArrayLike,
    P: ArrayLike,
    *,
    power: str = "total",
    rtol: ArrayLike = 1e-5,
    mask: ArrayLike | None = None,
    antenna_mask: ArrayLike | None = None,
) -> jax.Array:
    """Whether each sample's beams meet the power constraint (3b) to a relative tolerance: bool ``(...,)``.

    ``"total"``: ``||W||_F^2 <= P (1 + rtol)``; ``"antenna"``: ``sum_k |W[k, n]|^2 <= P / N (1 + rtol)`` for every
    antenna ``n``, with ``N`` the number of *present* antennas of the sample (``sum(antenna_mask)``, the budget
    UBERT's per-antenna GPA gives padded batches). ``W`` complex ``(..., K, N)``, ``P`` [W] scalar or per sample
    ``(...,)``, ``rtol`` real ``>= 0``; ``mask`` as for :func:`gpa` (absent users' beams do not count);
    ``antenna_mask`` optional bool ``(..., N)``, True for present antennas (absent antennas' entries do not count,
    as absent users' beams do not).
    """
    _checks.name_in("power", power, POWER_CONSTRAINTS)
    W = _checks.complex_kn("W", W)
    batch, N = W.shape[:-2], W.shape[-1]
    mask = _checks.user_mask(mask, batch, W.shape[-2])
    if mask is not None:
        W = jnp.where(mask[..., None], W, 0)
    antenna_mask = _checks.antenna_mask(antenna_mask, batch, N)
    if antenna_mask is not None:
        W = jnp.where(antenna_mask[..., None, :], W, 0)
    P = _checks.real_param("P", P, batch, low=0.0, what="power budget in W").astype(W.real.dtype)
    rtol = _checks.real_param("rtol", rtol, batch, low=0.0, strict=False, what="relative tolerance")
    rtol = rtol.astype(W.real.dtype)
    col = jnp.sum(W.real**2 + W.imag**2, axis=-2)  # (..., N)
    if power == "antenna":
        n = N if antenna_mask is None else jnp.maximum(jnp.sum(antenna_mask, axis=-1), 1)
        return jnp.all(col <= (P / n * (1 + rtol))[..., None], axis=-1)
    return jnp.sum(col, axis=-1) <= P * (1 + rtol)


def _norm_floor(c, p, floor):
    r"""``sqrt(max(c^2 p, floor))`` without forming ``c^2 p`` when it could overflow (``c >= 1``) or
    ``floor / c^2`` when that could (``c < 1``); exact for a constant ``c``, finite gradient in ``p``."""
    hi = jnp.maximum(c, 1.0)
    lo = jnp.minimum(c, 1.0)
    return jnp.where(c >= 1, hi * jnp.sqrt(jnp.maximum(p, floor / hi**2)), jnp.sqrt(jnp.maximum(lo**2 * p, floor)))


@public(static=("power",))
def gpa(W: ArrayLike, P: ArrayLike, *, mask: ArrayLike | None = None, power: str = "total") -> jax.Array:
    r"""Generalizable power adapter (GPA), eq. 15, applied per sample.

    .. math::
        \mathrm{GPA}(W) = \begin{cases} \sqrt{P}\, W, & \|W\|_F^2 \le 1 \\
                                        \sqrt{P / \|W\|_F^2}\, W, & \|W\|_F^2 > 1 \end{cases}
                        = \frac{\sqrt{P}}{\sqrt{\max(\|W\|_F^2, 1)}} W

    The ``max`` form is branch-free and has a finite gradient everywhere, also at ``W = 0``
    (no square root of zero is differentiated). The result satisfies ``||GPA(W)||_F^2 <= P``.

    Args:
      W: complex ``(..., K, N)`` unconstrained beamformers (the FC output of eq. 14).
      P: power budget [W] (> 0), scalar or per sample ``(...,)``; a traced ``P <= 0`` gives zero beams.
      mask: optional bool ``(..., K)``; absent users' beams are zeroed first.
      power: ``"total"`` (default) or ``"antenna"``: eq. 15 per antenna with ``P / N`` each
        (:func:`gpa_antenna`).

    Returns:
      complex ``(..., K, N)`` feasible beamformers.
    """
    if _checks.name_in("power", power, POWER_CONSTRAINTS) == "antenna":
        return gpa_antenna(W, split_budget(W, P), mask=mask)
    W, c, p = _masked_scaled(W, mask)
    P = _checks.real_param("P", P, W.shape[:-2], low=0.0, what="power budget in W").astype(p.dtype)
    P, _ = _safe_P(P)
    scale = jnp.sqrt(P) / _norm_floor(c, p, 1.0)
    return W * scale[..., None, None].astype(W.dtype)


@public(static=("power",))
def project_power(W: ArrayLike, P: ArrayLike, *, mask: ArrayLike | None = None, power: str = "total") -> jax.Array:
    r"""Euclidean projection onto the power ball ``{W : ||W||_F^2 <= P}`` (constraint 3b), per sample.

    .. math:: \Pi(W) = W \sqrt{P / \max(\|W\|_F^2, P)}

    Points inside the ball are returned unchanged; points outside are scaled onto its surface.
    Differentiable, with a finite gradient at ``W = 0`` (``P > 0``).

    Args:
      W: complex ``(..., K, N)``.
      P: power budget [W] (> 0), scalar or per sample ``(...,)``; a traced ``P <= 0`` gives zero beams.
      mask: optional bool ``(..., K)``; absent users' beams are zeroed first.
      power: ``"total"`` (default) or ``"antenna"``: the projection onto ``P / N`` per antenna
        (:func:`project_antenna_power`).

    Returns:
      complex ``(..., K, N)``.
    """
    if _checks.name_in("power", power, POWER_CONSTRAINTS) == "antenna":
        return project_antenna_power(W, split_budget(W, P), mask=mask)
    W, c, p = _masked_scaled(W, mask)
    P = _checks.real_param("P", P, W.shape[:-2], low=0.0, what="power budget in W").astype(p.dtype)
    P, P_div = _safe_P(P)
    scale = jnp.sqrt(P) / _norm_floor(c, p, P_div)
    return W * scale[..., None, None].astype(W.dtype)


def _antenna_scaled(W, P_n, mask):
    """Masked ``W``, per-antenna budgets ``P_n (..., N)`` (validated), column scales ``c (..., N)`` and
    ``||W[:, n] / c_n||^2 (..., N)``."""
    W = _checks.complex_kn("W", W)
    mask = _checks.user_mask(mask, W.shape[:-2], W.shape[-2])
    if mask is not None:
        W = jnp.where(mask[..., None], W, 0)
    P_n = _checks.antenna_budget("P_n", P_n, W.shape[:-2], W.shape[-1])
    c = _checks.row_scale(W, axes=-2)  # (..., 1, N)
    Ws = W / c.astype(W.dtype)
    return W, P_n, c[..., 0, :], jnp.sum(Ws.real**2 + Ws.imag**2, axis=-2)


@public()
def project_antenna_power(W: ArrayLike, P_n: ArrayLike, *, mask: ArrayLike | None = None) -> jax.Array:
    r"""Euclidean projection onto the per-antenna power set ``{W : sum_k |W[k, n]|^2 <= P_n for every n}``.

    The set is a product of balls, one per antenna (column of ``W``), so the projection scales each column
    on its own:

    .. math:: \Pi(W)[:, n] = W[:, n] \sqrt{P_n / \max(\|W[:, n]\|^2, P_n)}

    Args:
      W: complex ``(..., K, N)``.
      P_n: per-antenna budgets [W] (> 0): a scalar for every antenna (e.g. ``P / N``) or ``(..., N)``; a traced
        ``P_n <= 0`` gives zero columns.
      mask: optional bool ``(..., K)``; absent users' beams are zeroed first.

    Returns:
      complex ``(..., K, N)``; ``sum_k |W[k, n]|^2 <= P_n``, columns already inside unchanged.
    """
    W, P_n, c, p = _antenna_scaled(W, P_n, mask)
    P_n, P_div = _safe_P(P_n.astype(p.dtype))
    scale = jnp.sqrt(P_n) / _norm_floor(c, p, P_div)
    return W * scale[..., None, :].astype(W.dtype)


@public()
def gpa_antenna(W: ArrayLike, P_n: ArrayLike, *, mask: ArrayLike | None = None) -> jax.Array:
    r"""The GPA of eq. 15 per antenna: each column of ``W`` is treated as eq. 15 treats the whole matrix,

    .. math:: \mathrm{GPA}_n(W)[:, n] = \frac{\sqrt{P_n}}{\sqrt{\max(\|W[:, n]\|^2, 1)}} W[:, n],

    so a model's raw output lands in the per-antenna power set (``sum_k |W[k, n]|^2 <= P_n``), and an antenna
    can use less than its budget. Differentiable, finite gradient at ``W = 0``.

    Args:
      W: complex ``(..., K, N)`` unconstrained beamformers.
      P_n: per-antenna budgets [W] (> 0), scalar or ``(..., N)``.
      mask: optional bool ``(..., K)``.

    Returns:
      complex ``(..., K, N)`` beams within the per-antenna budgets.
    """
    W, P_n, c, p = _antenna_scaled(W, P_n, mask)
    P_n, _ = _safe_P(P_n.astype(p.dtype))
    scale = jnp.sqrt(P_n) / _norm_floor(c, p, 1.0)
    return W * scale[..., None, :].astype(W.dtype)


@public()
def scale_antenna_power(W: ArrayLike, P_n: ArrayLike, *, mask: ArrayLike | None = None) -> jax.Array:
    r"""``W`` scaled as a whole, directions and power split kept, until its fullest antenna meets its budget:

    .. math:: W \min_n \sqrt{P_n / \|W[:, n]\|^2}

    The usual way to make a total-power precoder (RZF, ZF, MRT, a total-power WMMSE solution) feasible under
    per-antenna constraints; every antenna then has ``sum_k |W[k, n]|^2 <= P_n``, one of them with equality.
    Zero columns do not count (a zero ``W`` stays zero).

    Args:
      W: complex ``(..., K, N)``; P_n: per-antenna budgets [W] (> 0), scalar or ``(..., N)``; mask: as above.

    Returns:
      complex ``(..., K, N)``.
    """
    W, P_n, c, p = _antenna_scaled(W, P_n, mask)
    P_n, _ = _safe_P(P_n.astype(p.dtype))
    # sqrt(P_n) / ||W[:, n]|| per antenna, +inf for zero columns; the smallest one scales W
    ratio = jnp.where(p > 0, jnp.sqrt(P_n) / (c * jnp.sqrt(jnp.where(p > 0, p, 1.0))), jnp.inf)
    scale = jnp.min(ratio, axis=-1)
    scale = jnp.where(jnp.isfinite(scale), scale, 0.0)
    return W * scale[..., None, None].astype(W.dtype)


@public(static=("num_iter",))
def maxmin_power(
    H: ArrayLike,
    W: ArrayLike,
    P: ArrayLike,
    sigma2: ArrayLike = 0.1,
    *,
    mask: ArrayLike | None = None,
    num_iter: int = 20,
) -> jax.Array:
    r"""Max-min SINR power allocation for fixed beam directions (SINR balancing), per sample.

    Keeps the direction :math:`u_k = w_k / \|w_k\|` of every beam and chooses the powers
    :math:`p_k = \|w_k\|^2` that maximise :math:`\min_k \mathrm{SINR}_k` (eq. 2) under
    :math:`\sum_k p_k = P` (3b). With :math:`a_{ki} = |h_k^H u_i|^2` the optimum puts every user at the
    same SINR :math:`\gamma`,

    .. math::
        \frac{p_k a_{kk}}{\gamma} = \sum_{i \ne k} p_i a_{ki} + \sigma_k^2 , \qquad \sum_k p_k = P ,

    i.e. :math:`[p; 1]` is the Perron eigenvector (eigenvalue :math:`1/\gamma`) of the non-negative
    extended coupling matrix :math:`\begin{bmatrix} D\Psi & D\sigma \\ 1^T D\Psi / P & 1^T D\sigma / P
    \end{bmatrix}`, :math:`D = \mathrm{diag}(1/a_{kk})`, :math:`\Psi` the off-diagonal part of
    :math:`a` (Zander 1992; Schubert & Boche, IEEE TVT 2004). It is computed by the normalised fixed-point
    (power) iteration :math:`p \leftarrow P\, t / 1^T t`, :math:`t = D(\Psi p + \sigma)`, from equal powers;
    the matrix is positive in its last row and column, so the iteration converges geometrically (a few
    iterations at the paper's SNR). A fixed ``num_iter`` keeps it jittable and differentiable.

    With RZF directions this is the classical near-optimal max-min precoder (``jb.rzf`` directions + this
    allocation: 99.8 % of :func:`jaxbeam.maxmin_exact` on Rayleigh (6, 12) and (8, 16) channels at
    P = 1, sigma2 = 0.1, where RZF's equal powers reach 84 %); applied to the beams of
    :func:`jaxbeam.maxmin_exact` it leaves them unchanged.

    Args:
      H: complex ``(..., K, N)`` channels.
      W: complex ``(..., K, N)`` beams whose directions are kept; a zero row stays zero (its user gets no
        power).
      P: total power [W] (> 0), scalar or per sample ``(...,)``; the result has ``||W||_F^2 = P``. A traced
        ``P <= 0`` or NaN gives zero beams.
      sigma2: noise power [W] (> 0), broadcast against ``(..., K)`` (:mod:`jaxbeam.core._checks`): scalar, per user
        ``(K,)`` or ``(..., K)``, per sample ``(..., 1)``. A traced ``sigma2 <= 0`` is floored so that the SNR
        is at most ``1 / eps`` (:func:`jaxbeam.core._checks.floor_noise`).
      mask: optional bool ``(..., K)``; absent users get zero beams and take no power.
      num_iter: fixed-point iterations (>= 1).

    Returns:
      complex ``(..., K, N)`` beams ``sqrt(p_k) u_k``.
    """
    H = _checks.complex_kn("H", H)
    W = _checks.complex_kn("W", W)
    _checks.same_shape("H", H, "W", W)
    if isinstance(num_iter, bool) or not isinstance(num_iter, int | np.integer) or num_iter < 1:
        raise ValueError(f"num_iter must be an int >= 1; got {num_iter!r}")
    batch = jnp.broadcast_shapes(H.shape[:-2], W.shape[:-2])
    K = H.shape[-2]
    mask = _checks.user_mask(mask, batch, K)
    rdtype = jnp.result_type(H.real.dtype, W.real.dtype)
    P = _checks.real_param("P", P, batch, low=0.0, what="power budget in W").astype(rdtype)
    P, _ = _safe_P(P)
    s2 = _checks.noise("sigma2", sigma2, batch, K).astype(rdtype)
    H, W = jnp.broadcast_to(H, batch + H.shape[-2:]), jnp.broadcast_to(W, batch + W.shape[-2:])
    W = W / _checks.row_scale(W).astype(W.dtype)  # only the directions matter: no overflow of ||w_k||^2
    c = _checks.row_scale(H)  # SINRs are unchanged by H -> H / c, sigma2 -> sigma2 / c^2: no over/underflow
    H = H / c.astype(H.dtype)
    s2 = s2 / c[..., 0] ** 2
    norm2 = jnp.sum(W.real**2 + W.imag**2, -1)  # (..., K)
    on = norm2 > 0
    if mask is not None:
        on = on & mask
    inv_norm = jnp.where(on, 1.0 / jnp.where(on, norm2, 1.0), 0.0)
    G = gains(H, W)
    A = (G.real**2 + G.imag**2) * inv_norm[..., None, :]  # a_ki = |h_k^H u_i|^2
    d = jnp.diagonal(A, axis1=-2, axis2=-1)
    on = on & (d > 0)
    Psi = jnp.where(jnp.eye(K, dtype=bool) | ~on[..., None, :], 0.0, A)
    inv_d = jnp.where(on, 1.0 / jnp.where(on, d, 1.0), 0.0)
    Pb = jnp.broadcast_to(P, batch)[..., None]
    gain = Pb * jnp.max(d, -1, keepdims=True)  # largest received signal power
    s2 = jnp.minimum(_checks.floor_noise(jnp.broadcast_to(s2, d.shape), gain), gain / jnp.finfo(rdtype).eps)

    def step(_, p):
        t = inv_d * (jnp.sum(Psi * p[..., None, :], -1) + s2)
        return Pb * t / jnp.maximum(jnp.sum(t, -1, keepdims=True), jnp.finfo(rdtype).tiny)

    n_on = jnp.maximum(jnp.sum(on, -1, keepdims=True), 1).astype(rdtype)
    p = jax.lax.fori_loop(0, int(num_iter), step, jnp.where(on, Pb / n_on, 0.0))
    scale = jnp.where(on, jnp.sqrt(jnp.where(on, p * inv_norm, 1.0)), 0.0)  # no sqrt'(0) in the gradient
    return W * scale[..., None].astype(W.dtype)
