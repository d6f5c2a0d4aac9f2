r"""BERT for single-task beamforming (BERT4beam Sec. IV-B, eqs. 4-16, Fig. 1).

.. math::
    T = [t_1, \dots, t_K]^T,\ t_k = [\Re h_k; \Im h_k]                       \quad (4) \\
    T_{emb} = \mathrm{ELU}(\mathrm{LN}(T W_{fc}))                           \quad (7) \\
    T_{sec} = \mathrm{TEB}_L \circ \dots \circ \mathrm{TEB}_1 (T_{emb})     \quad (8\text{-}13) \\
    W_{out} = \mathrm{GPA}(T_{sec} W_{real} + j\, T_{sec} W_{imag})         \quad (14\text{-}16)

The parameter tree has three top-level parts, so fine-tuning can address them by name
(:mod:`jaxbeam.train.finetune`): ``embed`` (``fc``, ``ln``; depends on N), ``encoder``
(``block_0 .. block_{L-1}``; independent of K and N) and ``head`` (the eq. 14 FC to ``2N`` outputs:
the first N are real parts, the last N imaginary parts; depends on N).

``domain="angle"`` (paper 003 eq. 18) feeds the tokens of the angle-domain channel ``H F`` (``F`` the unitary
DFT over the antennas, :func:`jaxbeam.angle_domain`) and reads the output FC as angle-domain beams, mapped
back by ``F^H`` before the GPA; the map is unitary, so it changes the model's view of the channel, not the
utilities.

There is no positional encoding, so the model is permutation-equivariant over users and its parameters
do not depend on K (Remark 1). Absent users (``mask == False``) are excluded from attention, get zero
beams and do not change the present users' beams.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbeam.core import _checks
from jaxbeam.core.power import POWER_CONSTRAINTS, gpa, gpa_antenna
from jaxbeam.core.tokenize import angle_domain, spatial_domain, user_tokens
from jaxbeam.models.encoder import Encoder, attention_mask

# Output layer (eq. 14) initialisation, shared by every model that ends in the GPA (BERT, UBERT's eq. 28,
# the baselines): small enough that the raw beams start inside the unit ball of eq. 15 (for BERT
# E||W||_F^2 = 2KN * OUTPUT_INIT_SCALE, 0.14 at (6, 12)), where their norm -- the transmit power -- gets a
# gradient. Outside the ball the GPA normalises: the gradient is tangent to the sphere, every step only
# grows the norm, and the model is stuck at full power. That cost EE (whose optimum lies below P) most:
# BERT on the cpu preset reached 80.7 % of the label solver with Flax's default init (below RZF's 84.4 %)
# and 98.8 % with this one (experiments/bert_pretrain_cpu.py --utility ee --minutes 10).
OUTPUT_INIT_SCALE = 1e-3
DOMAINS = ("spatial", "angle")  # the channel view of the tokens (paper 003 eq. 18)


def output_init(scale: float = OUTPUT_INIT_SCALE):
    """Kernel initialiser of the eq. 14 output layer (see ``OUTPUT_INIT_SCALE``): variance ``scale / fan_in``."""
    return nn.initializers.variance_scaling(scale, "fan_in", "truncated_normal")


class Embedding(nn.Module):
    """Embedding block, eq. 7: ``ELU(LN(T W_fc))``, ``(..., K, 2N) -> (..., K, F)``."""

    features: int
    dtype: Any = None

    @nn.compact
    def __call__(self, T: jax.Array) -> jax.Array:
        x = nn.Dense(self.features, dtype=self.dtype, name="fc")(T)
        x = nn.LayerNorm(dtype=self.dtype, name="ln")(x)
        return nn.elu(x)


class BERT(nn.Module):
    """BERT beamformer of Fig. 1 for a fixed number of antennas N and any number of users K.

    Attributes:
      num_antennas: N, the number of transmit antennas (sets the input width 2N and output width 2N).
      features: token width F (paper: 1024).
      num_layers: number of Transformer encoder blocks L (paper: 12).
      num_heads: attention heads C (paper: 16); must divide ``features``.
      mlp_ratio: FFN hidden width ``d' = mlp_ratio * F`` (DESIGN.md: 4).
      dtype: computation dtype of the embedding and encoder (e.g. ``jnp.bfloat16``); parameters, the
        output FC and the power adapter stay float32.
      domain: ``"spatial"`` (eq. 4, the paper) or ``"angle"`` (tokens and beams in the DFT domain, paper 003
        eq. 18; module docstring).
      power: ``"total"`` (eq. 15's GPA, ``||W||_F^2 <= P``) or ``"antenna"`` (the GPA per antenna,
        :func:`jaxbeam.gpa_antenna`: ``sum_k |W[k, n]|^2 <= P / N`` for every antenna).

    Call: ``model.apply(variables, H, P, mask=None) -> W``.

    Args:
      H: complex ``(B, K, N)`` channels (any leading batch shape).
      P: power budget [W], scalar or per sample ``(B,)``.
      mask: optional bool ``(B, K)``, True for present users.

    Returns:
      complex ``(B, K, N)`` beamformers (the dtype of ``H``), ``||W||_F^2 <= P`` per sample (eq. 15),
      zero rows for absent users.
    """

    num_antennas: int
    features: int
    num_layers: int
    num_heads: int
    mlp_ratio: int = 4
    dtype: Any = None
    domain: str = "spatial"
    power: str = "total"

    @nn.compact
    def __call__(self, H: jax.Array, P: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        _checks.name_in("domain", self.domain, DOMAINS)
        _checks.name_in("power", self.power, POWER_CONSTRAINTS)
        H = _checks.complex_kn("H", H)
        N = self.num_antennas
        if H.shape[-1] != N:
            raise ValueError(f"H must have N = num_antennas = {N} columns; got shape {H.shape}")
        mask = _checks.user_mask(mask, H.shape[:-2], H.shape[-2])
        if mask is not None:
            mask = jnp.broadcast_to(mask, H.shape[:-1])
        T = user_tokens(H if self.domain == "spatial" else angle_domain(H))  # eq. 4, (..., K, 2N)
        if mask is not None:
            T = jnp.where(mask[..., None], T, 0)
        x = Embedding(self.features, self.dtype, name="embed")(T)  # eq. 7
        x = Encoder(self.features, self.num_layers, self.num_heads, self.mlp_ratio, self.dtype, name="encoder")(
            x, attention_mask(mask)
        )  # eqs. 8-13
        out = nn.Dense(2 * N, dtype=jnp.float32, kernel_init=output_init(), name="head")(
            x.astype(jnp.float32)
        )  # eq. 14
        rdtype = H.real.dtype
        W = jax.lax.complex(out[..., :N].astype(rdtype), out[..., N:].astype(rdtype))
        if self.domain == "angle":
            W = spatial_domain(W)
        if self.power == "antenna":
            P = _checks.real_param("P", P, H.shape[:-2], low=0.0, what="power budget in W")
            return gpa_antenna(W, jnp.asarray(P, rdtype)[..., None] / N, mask=mask)  # eq. 15 per antenna
        return gpa(W, P, mask=mask)  # eq. 15
