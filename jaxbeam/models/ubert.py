r"""UBERT: one model for every utility, user count and antenna count (BERT4beam Sec. V, eqs. 19-28, Fig. 2).

.. math::
    T_a[k, n] = [\Re h_k[n], \Im h_k[n]]                                           \quad (19) \\
    T_{pos}[k] = T_a[k] W_{embedding} + P_{cosine}                                 \quad (20, 21) \\
    A[k, i, j] = \mathrm{ReLU}(a^T W_s T_{pos}[k, i] + a^T W_t T_{pos}[k, j])      \quad (22) \\
    T_{ant}[k, i] = \mathrm{Softmax}_j(A[k, i])^T T_{pos}[k]                       \quad (23) \\
    T_{user}[k] = W_{ext} \textstyle\sum_i T_{ant}[k, i]                           \quad (24) \\
    T_{task} = [T_{user}; t_{task}] \in \mathbb{R}^{(K+1) \times F}                \quad (25) \\
    T_{teb} = \mathrm{TEB}_L \circ \dots \circ \mathrm{TEB}_1(T_{task})            \quad (8\text{-}13) \\
    \hat T_{ant}[k, i] = T_{ant}[k, i] + T_{teb}[k] + T_{teb}[K+1]                 \quad (26, 27) \\
    W_{Uout} = \mathrm{GPA}(\hat T_{ant} w_{Urel} + j\, \hat T_{ant} w_{Uimg})     \quad (28, 15)

Every parameter has a shape set by ``F`` alone (the tokens are per channel *element*), so one set of
parameters runs for any number of users K and antennas N: pre-training and fine-tuning share the
architecture and no layer is re-initialised (Sec. V-C, Remark 3). The parameter tree has four
top-level parts: ``aeb`` (``embedding`` = W_embedding, ``W_s``, ``W_t``, ``a``, ``ext`` = W_ext),
``task`` (the three task tokens, rows in the order of :data:`jaxbeam.TASKS`), ``encoder`` (the TEBs
shared with BERT) and ``head`` (``[w_Urel, w_Uimg]`` as one ``(F, 2)`` kernel).

**Eq. 21, index convention.** The paper writes ``cos(i / 10000^{2j/F})`` for even ``j`` and ``sin`` for
odd ``j`` with ``i`` in ``{1..N}`` and ``j`` in ``{1..F}``. Read literally, the exponent ``2j/F`` runs up
to 2, so the upper half of the feature dimensions would carry frequencies below ``10^-4`` rad per
antenna, i.e. constants (cos = 1, sin = 0) over any realistic N. We read eq. 21 as the sinusoidal code
of Vaswani et al. that it cites ([9]), where each (cos, sin) pair of dimensions shares one frequency:

    P_cosine[n, j] = cos(i / 10000^(2 floor(j/2) / F))  for even j,
                     sin(i / 10000^(2 floor(j/2) / F))  for odd j,

with ``j = 0..F-1`` the 0-based feature index (so the even/odd assignment of cos/sin is as written in
eq. 21) and ``i = n + 1`` the 1-based antenna index of eq. 21 for the 0-based array position ``n``.
The code of antenna ``n`` does not depend on N, which is what makes padded (mixed-N) batches equal to
unpadded runs. See :func:`cosine_positional_encoding`.

**Eq. 23, residual.** The scores of eq. 22 are additive, ``A[k, i, j] = ReLU(s_i + t_j)``, so every
query ``i`` ranks the keys ``j`` in the same order (the "static attention" of additive scoring), and
eq. 23 has no residual: all N updated tokens of a user become nearly the same mixture of its antenna
tokens and the beam loses its per-antenna structure (W[k, n] almost constant in n). We therefore add
the standard residual, ``T_ant[k, i] = T_pos[k, i] + Softmax(A[k, i])^T T_pos[k]`` (``aeb_residual``,
default on; README, "UBERT", has the fit that motivated it).

**Output layer, expressiveness.** With eq. 28 as written (a linear map per element) and eq. 27's sum,
``W[k, n] = T_ant[k, n] . w + T_hat[k] . w``: other users reach user k's beam only through the term
``T_hat[k] . w``, which is the same for every antenna n. Interference-aware beams (ZF-like, whose
entry n mixes the other users' channels at antenna n) are then out of reach of the output layer itself.
``head_hidden > 0`` puts a per-element GELU layer before the final map, so the antenna token (which
carries the position code) and the user context interact. Trained as written, the eq. 28 head learns
matched filtering (MRT) and nothing more (README, "UBERT").

``head="structured"`` therefore keeps the
AEB, task token and encoder of Fig. 2 but replaces eqs. 27-28 by the optimal beamforming structure
(Bjornson, Bengtsson, Ottersten 2014; :func:`jaxbeam.core.precoders.optimal_structure`): a dense layer on
each user token of eq. 26 gives ``log lambda_k`` and a power logit, a pooled token the total power, and

    w_k = sqrt(p_k) (I + sum_i lambda_i h_i h_i^H)^{-1} h_k / ||(I + sum_i lambda_i h_i h_i^H)^{-1} h_k||,

with ``lambda_k = exp(z_k) P / K`` and ``p = softmax(z') sigmoid(z_tot)`` (so ``||W||_F^2 < 1`` and the
GPA of eq. 15 scales by ``sqrt(P)``; EE can use less than full power). The SR, MR and EE optima all have
this form, every parameter shape still depends on F only (any K, any N), and the beams stay equivariant
to user permutations. The biases start the model at RZF
(``lambda_k = P / (K sigma2)`` with the module's ``sigma2``, equal powers, 95 % of the budget).

``head="balanced"`` (the default, also of the presets: ``ModelConfig.ubert_head``) adds one step of
model-based power control to the structured head: the same directions, and powers

    p = (1 - g) p_predicted + g p_maxmin,   g = sigmoid(FC(pooled token)) in (0, 1),

where ``p_maxmin`` is the max-min (SINR-balancing) allocation of the same total power for those
directions (:func:`jaxbeam.maxmin_power`, a differentiable fixed-point iteration with the module's
``sigma2``). The pooled token carries the task token (eq. 26), so the gate is learned per task and per
sample; it starts at g = 1/2. Why: with the structured head UBERT's MR stays far below that of RZF's
own directions with balanced powers (README, "UBERT"): the encoder has to predict K powers that
equalise K SINRs, a fixed point of the interference coupling that a few attention layers approximate
poorly, and the balancing step computes it exactly.

**Padding.** ``mask`` (bool ``(B, K)``) marks present users: absent users take no part in the
encoder's attention and get zero beams. ``antenna_mask`` (bool ``(B, N)``) marks present antennas, so a
batch may mix antenna counts: padded antennas have their channel entries zeroed, are excluded from
the keys of the additive attention (eq. 23) and from the sum of eq. 24, and get zero beam entries. Pad
at the *end* of the antenna axis: positions follow the array index, so trailing padding leaves the
present antennas' positional codes (and hence the beams) equal to an unpadded run.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxbeam.core import _checks
from jaxbeam.core.power import gpa, gpa_antenna, maxmin_power, project_antenna_power
from jaxbeam.core.precoders import optimal_structure
from jaxbeam.core.tokenize import angle_domain, antenna_tokens, spatial_domain
from jaxbeam.core.utility import TASKS
from jaxbeam.models.bert import (
    DOMAINS,
    POWER_CONSTRAINTS,
    check_beams,
    check_sizes,
    check_variables,
    encoder_made_for,
    output_init,
    param_shape,
)
from jaxbeam.models.encoder import Encoder, attention_mask

NUM_TASKS = len(TASKS)
HEADS = ("element", "structured", "balanced")


def cosine_positional_encoding(num_antennas: int, features: int, dtype: Any = jnp.float32) -> jax.Array:
    r"""The cosine positional encoding matrix ``P_cosine`` of eq. 21, ``(N, F)``.

    ``P[n, j] = cos(i w_j)`` for even ``j`` and ``sin(i w_j)`` for odd ``j``, with the 1-based antenna
    index ``i = n + 1`` and ``w_j = 10000^{-2 floor(j/2) / F}`` (0-based feature index ``j``); see the
    module docstring for why this reading of eq. 21's indices.

    Args:
      num_antennas: N (a static Python int).
      features: F (a static Python int).
      dtype: output dtype.

    Returns:
      ``(N, F)`` array with entries in ``[-1, 1]``; row ``n`` does not depend on N.
    """
    i = np.arange(1, num_antennas + 1, dtype=np.float64)[:, None]
    j = np.arange(features)
    freq = 10000.0 ** (-2.0 * (j // 2) / features)
    angle = i * freq[None, :]
    pe = np.where(j % 2 == 0, np.cos(angle), np.sin(angle))
    return jnp.asarray(pe, dtype=dtype)


def _task_ids(task, batch_shape: tuple):
    """Validated task ids broadcast to ``batch_shape``; traced ids are clamped into ``[0, 3)`` (class docstring)."""
    return _checks.clamp_task(_checks.task_ids("task", task, batch_shape))


class AntennaEncoding(nn.Module):
    """Antenna encoding block (AEB), eqs. 20-24: antenna tokens ``(..., K, N, 2)`` -> user tokens.

    Attributes:
      features: token width F.
      positional_encoding: add ``P_cosine`` (eq. 21); False gives the ablation UBERT* of Table VIII.
      residual: add ``T_pos[k, i]`` to the attention output of eq. 23 (see the module docstring).
      dtype: computation dtype.

    Call: ``aeb(Ta, antenna_mask=None) -> (T_user (..., K, F), T_ant (..., K, N, F))``; ``antenna_mask``
    is bool ``(..., N)`` (already broadcast to the batch shape), True for present antennas.
    """

    features: int
    positional_encoding: bool = True
    dtype: Any = None
    residual: bool = True

    @nn.compact
    def __call__(self, Ta: jax.Array, antenna_mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        F = self.features
        N = Ta.shape[-2]
        # eq. 20: W_embedding in R^{2 x F} (no bias, as written) + P_cosine (eq. 21).
        x = nn.Dense(F, use_bias=False, dtype=self.dtype, name="embedding")(Ta)  # (..., K, N, F)
        if self.positional_encoding:
            x = x + cosine_positional_encoding(N, F, x.dtype)
        # eq. 22: a^T W_s x_i is a scalar per token; computed as x_i . (W_s a) (same parameters, one matvec).
        init = nn.initializers.lecun_normal()
        W_s = self.param("W_s", init, (F, F), jnp.float32)
        W_t = self.param("W_t", init, (F, F), jnp.float32)
        a = self.param("a", nn.initializers.normal(stddev=F**-0.5), (F,), jnp.float32)
        cdt = x.dtype
        s = x @ (W_s @ a).astype(cdt)  # source scores (..., K, N)
        t = x @ (W_t @ a).astype(cdt)  # target scores (..., K, N)
        sdt = jnp.promote_types(cdt, jnp.float32)  # softmax in >= float32 (bfloat16 runs), float64 under x64
        A = nn.relu(s[..., :, None] + t[..., None, :]).astype(sdt)  # (..., K, N_i, N_j)
        if antenna_mask is not None:  # padded antennas are no keys (j); their own rows are discarded later
            A = jnp.where(antenna_mask[..., None, None, :], A, jnp.finfo(sdt).min)
        alpha = jax.nn.softmax(A, axis=-1).astype(cdt)
        T_ant = alpha @ x  # eq. 23, (..., K, N, F)
        if self.residual:
            T_ant = x + T_ant
        if antenna_mask is not None:
            T_ant = jnp.where(antenna_mask[..., None, :, None], T_ant, 0)
        # eq. 24: sum over the (present) antennas, then W_ext in R^{F x F} (no bias, as written).
        T_user = nn.Dense(F, use_bias=False, dtype=self.dtype, name="ext")(jnp.sum(T_ant, axis=-2))
        return T_user, T_ant


class UBERT(nn.Module):
    """UBERT multi-task beamformer of Fig. 2: any utility (task token), any K and any N, one parameter set.

    Attributes:
      features: token width F (paper: 1024).
      num_layers: number of Transformer encoder blocks L (paper: 12).
      num_heads: attention heads C of the TEBs (paper: 16); must divide ``features``.
      mlp_ratio: FFN hidden width ``d' = mlp_ratio * F`` (docs/design.md: 4).
      dtype: computation dtype of the AEB and encoder (e.g. ``jnp.bfloat16``); parameters, the output
        mapping and the power adapter stay float32.
      positional_encoding: ablation switch; False drops ``P_cosine`` (UBERT*, Table VIII).
      task_embedding: ablation switch; False drops the task token of eq. 25 and its
        addition in eq. 26 (UBERT-dagger, Table VIII); ``task`` is then accepted and ignored.
      head_hidden: ``head="element"`` only: 0 (default) is eq. 28 as written, one linear map ``F -> 2``
        per element; a positive width inserts a per-element GELU layer of that width before it (module
        docstring, "Output layer").
      aeb_residual: the residual of eq. 23 (default True; False is eq. 23 as written).
      head: ``"balanced"`` (default): ``"structured"`` plus a learned, task-aware gate towards the max-min
        power allocation of the predicted directions. ``"structured"``: the user tokens of eq. 26 give
        each user a dual weight ``lambda_k`` and a power ``p_k``, and the beams take the optimal
        beamforming structure (:func:`jaxbeam.core.precoders.optimal_structure`). ``"element"``: eqs. 27-28 as
        written (``head_hidden`` applies), which cannot cancel interference. See the module docstring,
        "Output layer".
      sigma2: noise power [W] the structured heads are built for (default 0.1, Sec. VI-A): it sets the
        initial ``lambda`` (RZF) and the balancing step's noise. Unused by ``head="element"``.
      balance_iters: fixed-point iterations of the balancing step (``head="balanced"``).
      domain: ``"spatial"`` (eq. 19, the paper) or ``"angle"``: antenna tokens of the angle-domain channel
        (paper 003 eq. 18; with ``antenna_mask``, each sample's DFT over its own present antennas, correct for
        any mask, also one with holes and under ``jit``: :func:`jaxbeam.angle_domain`); the element head's output
        is then read as angle-domain beams and mapped back, the structured heads build their beams from
        the spatial ``H`` as always.
      power: ``"total"`` (eq. 15) or ``"antenna"``: ``sum_k |W[k, n]|^2 <= P / N`` for each of a sample's N present
        antennas; the element head applies the GPA per antenna (:func:`jaxbeam.gpa_antenna`), the structured heads
        project their beams onto the per-antenna set (:func:`jaxbeam.project_antenna_power`).

    Call: ``model.apply(variables, H, P, task, mask=None, antenna_mask=None) -> W``.

    Args:
      H: complex ``(B, K, N)`` channels (any leading batch shape).
      P: power budget [W] (> 0; concrete values are checked), scalar or per sample ``(B,)``; a traced
        ``P <= 0`` gives zero beams.
      task: int, scalar or per sample ``(B,)``: index into ``jb.TASKS`` (0 = SR, 1 = MR, 2 = EE). A concrete
        id outside ``[0, 3)`` raises ``ValueError``; a traced one is clamped into ``[0, 3)`` (so it gives
        the beams of task 0 or 2, never NaN: the embedding lookup of an out-of-range id would be NaN).
      mask: optional bool ``(B, K)``, True for present users.
      antenna_mask: optional bool ``(B, N)``, True for present antennas (pad at the end).

    Returns:
      complex ``(B, K, N)`` beamformers (dtype of ``H``), ``||W||_F^2 <= P`` per sample (eq. 15), zero
      rows for absent users and zero columns for absent antennas. Equivariant to permutations of the
      users.

    Raises:
      ValueError: a size attribute that is not an int in range (``features``, ``num_heads`` >= 1, ...);
        variables made for other ``features``, ``num_layers``, ``num_heads``, ``mlp_ratio``, ``head``,
        ``head_hidden`` or ``task_embedding`` (named, with both values); concrete ``H`` so large that the
        network overflows (named with its scale; under ``jit`` such ``H`` gives NaN beams).
    """

    features: int
    num_layers: int
    num_heads: int
    mlp_ratio: int = 4
    dtype: Any = None
    positional_encoding: bool = True
    task_embedding: bool = True
    head_hidden: int = 0
    aeb_residual: bool = True
    head: str = "balanced"
    sigma2: float = 0.1
    balance_iters: int = 10
    domain: str = "spatial"
    power: str = "total"

    @nn.compact
    def __call__(
        self,
        H: jax.Array,
        P: jax.Array,
        task: jax.Array,
        mask: jax.Array | None = None,
        antenna_mask: jax.Array | None = None,
    ) -> jax.Array:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}; got {self.head!r}")
        _checks.name_in("domain", self.domain, DOMAINS)
        _checks.name_in("power", self.power, POWER_CONSTRAINTS)
        if isinstance(self.sigma2, bool) or not isinstance(self.sigma2, int | float) or not 0 < self.sigma2 < np.inf:
            raise ValueError(f"sigma2 must be a finite float > 0 (noise power in W, an attribute); got {self.sigma2!r}")
        check_sizes(self, features=1, num_layers=0, num_heads=1, mlp_ratio=1, head_hidden=0, balance_iters=1)
        check_variables(self, _ubert_made_for)
        H = _checks.complex_kn("H", H)
        batch, K, N = H.shape[:-2], H.shape[-2], H.shape[-1]
        mask = _checks.user_mask(mask, batch, K)
        if mask is not None:
            mask = jnp.broadcast_to(mask, batch + (K,))
        antenna_mask = _checks.antenna_mask(antenna_mask, batch, N)
        task = _task_ids(task, batch)
        _checks.real_param("P", P, batch, low=0.0, what="power budget in W")

        Ta = antenna_tokens(H if self.domain == "spatial" else angle_domain(H, antenna_mask))  # eq. 19, (..., K, N, 2)
        if mask is not None:
            Ta = jnp.where(mask[..., :, None, None], Ta, 0)
        if antenna_mask is not None:
            Ta = jnp.where(antenna_mask[..., None, :, None], Ta, 0)
        T_user, T_ant = AntennaEncoding(
            self.features, self.positional_encoding, self.dtype, self.aeb_residual, name="aeb"
        )(Ta, antenna_mask)  # eqs. 20-24

        tokens, token_mask = T_user, mask
        if self.task_embedding:  # eq. 25: the task token goes last (row K+1) and is always present
            t_task = nn.Embed(NUM_TASKS, self.features, name="task")(task).astype(T_user.dtype)  # (..., F)
            tokens = jnp.concatenate([T_user, t_task[..., None, :]], axis=-2)
            if mask is not None:
                token_mask = jnp.concatenate([mask, jnp.ones(batch + (1,), bool)], axis=-1)
        T_teb = Encoder(self.features, self.num_layers, self.num_heads, self.mlp_ratio, self.dtype, name="encoder")(
            tokens, attention_mask(token_mask)
        )  # eqs. 8-13

        T_hat = T_teb[..., :K, :]
        if self.task_embedding:
            T_hat = T_hat + T_teb[..., K:, :]  # eq. 26
        if self.head in ("structured", "balanced"):
            W = self._structured(H, P, T_hat, mask, antenna_mask)
            return W if self.power == "total" else project_antenna_power(W, self._antenna_budget(P, W, antenna_mask))
        T_hat_ant = T_ant + T_hat[..., :, None, :]  # eq. 27, (..., K, N, F)
        z = T_hat_ant
        if self.head_hidden:
            z = nn.gelu(nn.Dense(self.head_hidden, dtype=self.dtype, name="head_hidden")(z), approximate=True)
        # eq. 28: one (F, 2) kernel = [w_Urel, w_Uimg] per channel element (no bias, as written). Its input,
        # the sum of two token streams of eq. 27 (T_ant is not normalised), has several times the unit
        # variance BERT's LN output has, so the init is 10x smaller to start inside the GPA ball as well.
        out = nn.Dense(2, use_bias=False, dtype=jnp.float32, kernel_init=output_init(1e-4), name="head")(
            z.astype(jnp.float32)
        )
        check_beams(self, out, H)
        rdtype = H.real.dtype
        W = jax.lax.complex(out[..., 0].astype(rdtype), out[..., 1].astype(rdtype))
        if self.domain == "angle":
            W = spatial_domain(W, antenna_mask)
        if antenna_mask is not None:
            W = jnp.where(antenna_mask[..., None, :], W, 0)
        if self.power == "antenna":
            return gpa_antenna(W, self._antenna_budget(P, W, antenna_mask), mask=mask)  # eq. 15 per antenna
        return gpa(W, P, mask=mask)  # eq. 15

    @staticmethod
    def _antenna_budget(P, W, antenna_mask):
        """``P / N_present`` per sample and antenna ``(..., N)`` (a traced ``P <= 0``: zero beams)."""
        n = W.shape[-1] if antenna_mask is None else jnp.maximum(jnp.sum(antenna_mask, -1), 1)
        P = jnp.broadcast_to(jnp.asarray(P, W.real.dtype), W.shape[:-2])
        P = jnp.where(P > 0, P, 0.0)
        return jnp.broadcast_to((P / n)[..., None], W.shape[:-2] + W.shape[-1:])

    def _structured(self, H, P, T_hat, mask, antenna_mask):
        """Structured output (module docstring): ``lambda_k``, ``p_k`` from the user tokens, then GPA."""
        f32 = jnp.float32
        present = jnp.ones(T_hat.shape[:-1], bool) if mask is None else mask
        x = T_hat.astype(f32)
        # Starts at RZF: lambda_k = P / (K sigma2), equal powers, total 0.95 of the budget.
        small = nn.initializers.normal(1e-3)
        z = nn.Dense(
            2, dtype=f32, kernel_init=small, bias_init=_constant_bias(-np.log(self.sigma2), 0.0), name="structure"
        )(x)
        pooled = jnp.sum(jnp.where(present[..., None], x, 0), -2) / jnp.maximum(jnp.sum(present, -1), 1)[..., None]
        z_tot = nn.Dense(1, dtype=f32, kernel_init=small, bias_init=_constant_bias(np.log(19.0)), name="total_power")(
            pooled
        )[..., 0]
        k_act = jnp.sum(present, -1).astype(f32)
        P_ = jnp.broadcast_to(jnp.asarray(P, f32), k_act.shape)
        P_ = jnp.where(P_ > 0, P_, 0.0)  # traced P <= 0 or NaN: zero beams (the GPA below scales by sqrt(P) = 0)
        lam = jnp.exp(jnp.clip(z[..., 0], -20.0, 20.0)) * (P_ / jnp.maximum(k_act, 1.0))[..., None]
        share = jax.nn.softmax(jnp.where(present, z[..., 1], -jnp.inf), axis=-1)
        total = jax.nn.sigmoid(z_tot)  # sum_k p_k < 1: GPA scales by sqrt(P)
        p = jnp.where(present, share, 0.0) * total[..., None]
        if antenna_mask is not None:
            H = jnp.where(antenna_mask[..., None, :], H, 0)
        rdtype = H.real.dtype
        if self.head == "structured":
            W = optimal_structure(H, lam.astype(rdtype), p.astype(rdtype), mask=mask)
            check_beams(self, W, H)
            return gpa(W, P_.astype(rdtype), mask=mask)  # eq. 15
        U = optimal_structure(H, lam.astype(rdtype), present.astype(rdtype), mask=mask)  # unit-norm directions
        check_beams(self, U, H)
        # max-min powers of the same total (in watts: the GPA turns sum_k p_k into P sum_k p_k)
        W_bal = maxmin_power(H, U, (P_ * total).astype(rdtype), self.sigma2, mask=mask, num_iter=self.balance_iters)
        p_bal = jnp.sum(W_bal.real**2 + W_bal.imag**2, -1).astype(f32) / jnp.where(P_ > 0, P_, 1.0)[..., None]
        g = jax.nn.sigmoid(nn.Dense(1, dtype=f32, kernel_init=small, name="balance_gate")(pooled))  # (..., 1)
        p = (1.0 - g) * p + g * p_bal
        scale = jnp.sqrt(jnp.where(present, p, 1.0)) * present  # no sqrt'(0) in the gradient
        return gpa(U * scale[..., None].astype(U.dtype), P_.astype(rdtype), mask=mask)  # eq. 15


def _ubert_made_for(params) -> dict:
    """The attributes of :class:`UBERT` read off its parameters (:func:`jaxbeam.models.bert.check_variables`)."""
    emb = param_shape(params, "aeb", "embedding", "kernel")  # (2, F)
    hidden = param_shape(params, "head_hidden", "kernel")  # (F, head_hidden)
    kind = None
    if emb:
        kind = "balanced" if "balance_gate" in params else "structured" if "structure" in params else "element"
    return {
        "features": emb[1] if emb else None,
        **(encoder_made_for(params.get("encoder", {})) if emb else {}),
        "head": kind,
        "head_hidden": (hidden[1] if hidden else 0) if kind == "element" else None,
        "task_embedding": ("task" in params) if emb else None,
    }


def _constant_bias(*values):
    """Bias initialiser with the given per-output values."""
    return lambda key, shape, dtype=jnp.float32: jnp.asarray(values, dtype).reshape(shape)
