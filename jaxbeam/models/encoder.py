r"""The Transformer encoder block (TEB) of BERT4beam, eqs. 8-13, shared by BERT, UBERT and GPT.

Post-LN: ``T_fir = LN(T + MHA(T))`` (eq. 10), ``T_sec = LN(T_fir + FFN(T_fir))`` (eq. 13), with
``FFN(x) = GELU_tanh(x W1 + b1) W2 + b2`` (eqs. 11-12), hidden width ``4F``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxbeam.core import _checks


def attention_mask(mask: jax.Array | None, *, causal: bool = False, length: int | None = None) -> jax.Array | None:
    """Attention mask ``(B, 1, L, L)`` from a token mask ``(B, L)`` (True = present) and/or causality.

    A padded token attends to nothing useful and is attended by no one; its own row attends to itself
    so that the softmax stays finite (its output is discarded downstream).
    """
    out = None
    if mask is not None:
        L = mask.shape[-1]
        pair = mask[..., None, :] & mask[..., :, None]
        pair = pair | jnp.eye(L, dtype=bool)
        out = pair[..., None, :, :]
    if causal:
        L = length if mask is None else mask.shape[-1]
        tri = jnp.tril(jnp.ones((L, L), bool))
        out = tri if out is None else out & tri
    return out


class EncoderBlock(nn.Module):
    """One post-LN Transformer encoder block (eqs. 8-13).

    Attributes:
      features: token width F (divisible by ``num_heads``).
      num_heads: number of attention heads C; head width ``d = F / C`` (eq. 8).
      mlp_ratio: FFN hidden width ``d' = mlp_ratio * F`` (docs/design.md: 4).
      dtype: computation dtype (e.g. ``jnp.bfloat16`` for the matmuls); parameters stay float32.

    Call: ``block(x, attn_mask=None) -> (B, L, F)`` for ``x`` of shape ``(B, L, F)`` and an optional
    boolean ``attn_mask`` broadcastable to ``(B, C, L, L)`` (True = may attend).
    """

    features: int
    num_heads: int
    mlp_ratio: int = 4
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, attn_mask: jax.Array | None = None) -> jax.Array:
        for name, low in (("features", 1), ("num_heads", 1), ("mlp_ratio", 1)):
            _checks.count(name, getattr(self, name), low, "an attribute of EncoderBlock")
        if self.features % self.num_heads:
            raise ValueError(f"features ({self.features}) must be divisible by num_heads ({self.num_heads})")
        # eqs. 8-9: scaled dot-product attention per head, heads concatenated and mixed by W_O.
        attn = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads,
            qkv_features=self.features,
            out_features=self.features,
            dtype=self.dtype,
            deterministic=True,
            name="mha",
        )(x, x, mask=attn_mask)
        x = nn.LayerNorm(dtype=self.dtype, name="ln_attn")(x + attn)  # eq. 10
        h = nn.Dense(self.mlp_ratio * self.features, dtype=self.dtype, name="ffn_in")(x)
        h = nn.gelu(h, approximate=True)  # eq. 12, tanh form
        h = nn.Dense(self.features, dtype=self.dtype, name="ffn_out")(h)  # eq. 11
        return nn.LayerNorm(dtype=self.dtype, name="ln_ffn")(x + h)  # eq. 13


class Encoder(nn.Module):
    """A stack of ``num_layers`` :class:`EncoderBlock` s (the L TEBs of Fig. 1), named ``block_0..``."""

    features: int
    num_layers: int
    num_heads: int
    mlp_ratio: int = 4
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, attn_mask: jax.Array | None = None) -> jax.Array:
        _checks.count("num_layers", self.num_layers, 0, "an attribute of Encoder")
        for i in range(self.num_layers):
            x = EncoderBlock(self.features, self.num_heads, self.mlp_ratio, self.dtype, name=f"block_{i}")(x, attn_mask)
        return x
