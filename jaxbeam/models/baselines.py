r"""The learned baselines of BERT4beam Sec. VI-A6: MLP [23], CNN [26], GCN [28], GAT [29] and GPT [33].

All five end in the output layer of BERT (eqs. 14-16): a real output of width ``2N`` per user (first N
= real parts, last N = imaginary parts) mapped to complex beams, then the GPA of eq. 15 with a per-sample
budget ``P``. All share BERT's call signature::

    W = model.apply(variables, H, P, mask=None)   # complex (B, K, N), ||W||_F^2 <= P per sample

``H`` is complex ``(B, K, N)`` (any leading batch shape), ``P`` [W] a scalar or ``(B,)``, ``mask`` an
optional bool ``(B, K)`` (True = present user); absent users' channels are zeroed on input and their
beams are zero. The papers behind [23], [26], [28], [29] are not in this repository; the architectures
below are the standard form of each family, sized by the same ``features`` / ``num_layers`` /
``num_heads`` knobs as BERT so the comparison of Fig. 3 is about the architecture:

- :class:`MLP`: the K user tokens (eq. 4) flattened to one ``2KN`` vector -> ``num_layers`` x
  (Dense F, LayerNorm, ReLU) -> Dense ``2KN``. Built for one (K, N).
- :class:`CNN`: the antenna-token image ``(K, N, 2)`` (eq. 19; real/imag as input channels) ->
  ``num_layers`` x (3x3 conv, ``channels`` filters, SAME padding, ReLU) -> flatten -> Dense F, ReLU
  -> Dense ``2KN``. Built for one (K, N).
- :class:`GCN`: users are the nodes of a fully connected graph with user tokens as node features;
  embedding ``ReLU(LN(t W))``, then per layer ``h_i <- LN(h_i + ReLU(W_self h_i + W_nbr mean_{j != i}
  h_j))`` over the present users (mean aggregation: the message-passing GNN of [28]); per-user head.
  Any K; permutation equivariant.
- :class:`GAT`: as GCN, with the neighbour mean replaced by multi-head additive attention (Velickovic
  et al.): ``e_ij^c = LeakyReLU_0.2(a_c^T [W_c h_i || W_c h_j])``, softmax over present j (self
  included), heads concatenated, ``h_i <- LN(h_i + ELU(sum_j alpha_ij^c W_c h_j))``. Any K;
  permutation equivariant.
- :class:`GPT`: decoder-only: BERT's embedding (eq. 7) and encoder blocks (eqs. 8-13) with a causal
  attention mask (user k attends to users <= k), then BERT's head. Any K; not permutation
  equivariant (the user order is the sequence order).

The residual + LayerNorm around each GCN/GAT layer is ours (the plain forms train poorly at depth);
it keeps the per-layer operator of each family.

As BERT, every model raises ``ValueError`` naming the attribute for a size that is not an int in range
(widths, heads, channels, kernel size >= 1; ``num_layers`` >= 0), naming the attribute and both values for
variables made for other sizes, and naming ``H`` with its scale when a concrete ``H`` overflows the network.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxbeam.core import _checks
from jaxbeam.core.power import gpa
from jaxbeam.core.tokenize import antenna_tokens, user_tokens
from jaxbeam.models.bert import (
    Embedding,
    check_beams,
    check_sizes,
    check_variables,
    encoder_made_for,
    numbered,
    output_init,
    param_shape,
)
from jaxbeam.models.encoder import Encoder, attention_mask


def _head(width: int) -> nn.Dense:
    """The output FC of eq. 14 (float32, the small GPA-aware init of :func:`jaxbeam.models.bert.output_init`)."""
    return nn.Dense(width, dtype=jnp.float32, kernel_init=output_init(), name="head")


def _inputs(H, mask, num_antennas: int, num_users: int | None = None):
    """Validate ``H`` / ``mask``; return ``(H, mask broadcast or None)``."""
    H = _checks.complex_kn("H", H)
    K, N = H.shape[-2:]
    if N != num_antennas:
        raise ValueError(f"H must have N = num_antennas = {num_antennas} columns; got shape {H.shape}")
    if num_users is not None and K != num_users:
        raise ValueError(
            f"H must have K = num_users = {num_users} rows (this model is built for one (K, N)); got shape {H.shape}"
        )
    mask = _checks.user_mask(mask, H.shape[:-2], K)
    if mask is not None:
        mask = jnp.broadcast_to(mask, H.shape[:-1])
        H = jnp.where(mask[..., None], H, 0)
    return H, mask


def _beams(model: nn.Module, out: jax.Array, H: jax.Array, P, mask) -> jax.Array:
    """Output layer of eqs. 14-16: ``(..., K, 2N)`` real -> complex ``(..., K, N)`` -> GPA (eq. 15)."""
    check_beams(model, out, H)  # an H so large that the network overflows: named, with its scale
    N = H.shape[-1]
    rdtype = H.real.dtype
    W = jax.lax.complex(out[..., :N].astype(rdtype), out[..., N:].astype(rdtype))
    return gpa(W, P, mask=mask)


def _head_made_for(params, flat: bool = False) -> dict:
    """``num_antennas`` (``num_users * num_antennas`` if ``flat``) read off the output FC's ``(F, 2N)`` kernel."""
    head = param_shape(params, "head", "kernel")
    return {"num_users * num_antennas" if flat else "num_antennas": head[1] // 2 if head else None}


def _graph_made_for(params, layer: str) -> dict:
    """GCN / GAT: ``num_antennas``, ``features`` off the node embedding ``(2N, F)``, layers counted by name."""
    fc = param_shape(params, "embed", "fc", "kernel")
    return {
        **_head_made_for(params),
        "features": fc[1] if fc else None,
        "num_layers": numbered(params, layer) if fc else None,
    }


class MLP(nn.Module):
    """Fully connected baseline [23] on the flattened channels; fixed (K, N).

    Attributes:
      num_users: K the model is built for.
      num_antennas: N the model is built for.
      features: hidden width F.
      num_layers: number of hidden layers.
      dtype: computation dtype of the hidden layers.

    Call: ``apply(variables, H, P, mask=None) -> W`` (module docstring); ``ValueError`` naming ``H``
    for another K or N.
    """

    num_users: int
    num_antennas: int
    features: int
    num_layers: int
    dtype: Any = None

    @nn.compact
    def __call__(self, H: jax.Array, P: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        check_sizes(self, num_users=1, num_antennas=1, features=1, num_layers=0)
        check_variables(self, self._made_for)
        H, mask = _inputs(H, mask, self.num_antennas, self.num_users)
        K, N = self.num_users, self.num_antennas
        x = user_tokens(H).reshape(H.shape[:-2] + (2 * K * N,))
        for i in range(self.num_layers):
            x = nn.Dense(self.features, dtype=self.dtype, name=f"hidden_{i}")(x)
            x = nn.relu(nn.LayerNorm(dtype=self.dtype, name=f"ln_{i}")(x))
        out = _head(2 * K * N)(x.astype(jnp.float32))
        return _beams(self, out.reshape(H.shape[:-2] + (K, 2 * N)), H, P, mask)

    @staticmethod
    def _made_for(params) -> dict:
        hidden = param_shape(params, "hidden_0", "kernel")  # (2KN, F)
        return {
            **_head_made_for(params, flat=True),
            "features": hidden[1] if hidden else None,
            "num_layers": numbered(params, "hidden_") if "head" in params else None,
        }


class CNN(nn.Module):
    """Convolutional baseline [26] on the ``(K, N, 2)`` channel image; fixed (K, N).

    Attributes:
      num_users: K the model is built for.
      num_antennas: N the model is built for.
      features: width F of the dense layer after the convolutions.
      num_layers: number of convolution layers.
      channels: filters per convolution layer.
      kernel_size: square kernel size of the convolutions.
      dtype: computation dtype.

    Call: ``apply(variables, H, P, mask=None) -> W``; ``ValueError`` naming ``H`` for another K or N.
    """

    num_users: int
    num_antennas: int
    features: int
    num_layers: int
    channels: int = 16
    kernel_size: int = 3
    dtype: Any = None

    @nn.compact
    def __call__(self, H: jax.Array, P: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        check_sizes(self, num_users=1, num_antennas=1, features=1, num_layers=0, channels=1, kernel_size=1)
        check_variables(self, self._made_for)
        H, mask = _inputs(H, mask, self.num_antennas, self.num_users)
        K, N = self.num_users, self.num_antennas
        batch = H.shape[:-2]
        x = antenna_tokens(H).reshape((-1, K, N, 2))  # one batch axis for nn.Conv
        for i in range(self.num_layers):
            x = nn.Conv(self.channels, (self.kernel_size,) * 2, padding="SAME", dtype=self.dtype, name=f"conv_{i}")(x)
            x = nn.relu(x)
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(self.features, dtype=self.dtype, name="dense")(x))
        out = _head(2 * K * N)(x.astype(jnp.float32))
        return _beams(self, out.reshape(batch + (K, 2 * N)), H, P, mask)

    @staticmethod
    def _made_for(params) -> dict:
        conv = param_shape(params, "conv_0", "kernel")  # (size, size, 2, channels)
        dense = param_shape(params, "dense", "kernel")  # (K N channels, F)
        return {
            **_head_made_for(params, flat=True),
            "features": dense[1] if dense else None,
            "num_layers": numbered(params, "conv_") if dense else None,
            "channels": conv[3] if conv else None,
            "kernel_size": conv[0] if conv else None,
        }


class _NodeEmbedding(nn.Module):
    """User tokens (eq. 4) -> ``ReLU(LN(t W))``, ``(..., K, 2N) -> (..., K, F)``."""

    features: int
    dtype: Any = None

    @nn.compact
    def __call__(self, T):
        x = nn.Dense(self.features, dtype=self.dtype, name="fc")(T)
        return nn.relu(nn.LayerNorm(dtype=self.dtype, name="ln")(x))


class GCN(nn.Module):
    """Graph convolutional baseline [28]: mean-aggregation message passing over the user graph; any K.

    Attributes:
      num_antennas: N (input width 2N, output width 2N).
      features: node feature width F.
      num_layers: number of message-passing layers.
      dtype: computation dtype.

    Call: ``apply(variables, H, P, mask=None) -> W`` (module docstring).
    """

    num_antennas: int
    features: int
    num_layers: int
    dtype: Any = None

    @nn.compact
    def __call__(self, H: jax.Array, P: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        check_sizes(self, num_antennas=1, features=1, num_layers=0)
        check_variables(self, lambda params: _graph_made_for(params, "self_"))
        H, mask = _inputs(H, mask, self.num_antennas)
        x = _NodeEmbedding(self.features, self.dtype, name="embed")(user_tokens(H))
        m = jnp.ones(H.shape[:-1], x.dtype) if mask is None else mask.astype(x.dtype)
        for i in range(self.num_layers):
            total = jnp.sum(m[..., None] * x, axis=-2, keepdims=True)
            others = jnp.maximum(jnp.sum(m, axis=-1, keepdims=True) - m, 1.0)  # present users j != i
            agg = (total - m[..., None] * x) / others[..., None]
            msg = nn.Dense(self.features, dtype=self.dtype, name=f"self_{i}")(x) + nn.Dense(
                self.features, use_bias=False, dtype=self.dtype, name=f"nbr_{i}"
            )(agg)
            x = nn.LayerNorm(dtype=self.dtype, name=f"ln_{i}")(x + nn.relu(msg))
        out = _head(2 * self.num_antennas)(x.astype(jnp.float32))
        return _beams(self, out, H, P, mask)


class GAT(nn.Module):
    """Graph attention baseline [29]: multi-head additive attention over the user graph; any K.

    Attributes:
      num_antennas: N (input width 2N, output width 2N).
      features: node feature width F (divisible by ``num_heads``).
      num_layers: number of attention layers.
      num_heads: attention heads C; head width ``F / C``.
      negative_slope: LeakyReLU slope of the attention scores (GAT: 0.2).
      dtype: computation dtype.

    Call: ``apply(variables, H, P, mask=None) -> W`` (module docstring).
    """

    num_antennas: int
    features: int
    num_layers: int
    num_heads: int
    negative_slope: float = 0.2
    dtype: Any = None

    @nn.compact
    def __call__(self, H: jax.Array, P: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        check_sizes(self, num_antennas=1, features=1, num_layers=0, num_heads=1)
        slope = self.negative_slope
        if isinstance(slope, bool) or not isinstance(slope, int | float) or not np.isfinite(slope):
            raise ValueError(f"negative_slope must be a finite float (an attribute of GAT); got {slope!r}")
        check_variables(self, self._made_for)
        if self.features % self.num_heads:
            raise ValueError(f"features ({self.features}) must be divisible by num_heads ({self.num_heads})")
        H, mask = _inputs(H, mask, self.num_antennas)
        K = H.shape[-2]
        C, d = self.num_heads, self.features // self.num_heads
        x = _NodeEmbedding(self.features, self.dtype, name="embed")(user_tokens(H))
        if mask is not None:  # keys j: present users, and always i itself (finite softmax for absent rows)
            allowed = (mask[..., None, :] | jnp.eye(K, dtype=bool))[..., None, :, :]  # (..., 1, K, K)
        for i in range(self.num_layers):
            z = nn.Dense(self.features, use_bias=False, dtype=self.dtype, name=f"W_{i}")(x)
            z = z.reshape(z.shape[:-1] + (C, d))  # (..., K, C, d)
            a_dst = self.param(f"a_dst_{i}", nn.initializers.normal(d**-0.5), (C, d), jnp.float32)
            a_src = self.param(f"a_src_{i}", nn.initializers.normal(d**-0.5), (C, d), jnp.float32)
            e_dst = jnp.einsum("...kcd,cd->...ck", z, a_dst.astype(z.dtype))  # a^T [W h_i || .] part
            e_src = jnp.einsum("...kcd,cd->...ck", z, a_src.astype(z.dtype))  # a^T [. || W h_j] part
            e = nn.leaky_relu(e_dst[..., :, None] + e_src[..., None, :], self.negative_slope)  # (..., C, K, K)
            e = e.astype(jnp.promote_types(e.dtype, jnp.float32))
            if mask is not None:
                e = jnp.where(allowed, e, jnp.finfo(e.dtype).min)
            alpha = jax.nn.softmax(e, axis=-1).astype(z.dtype)
            h = jnp.einsum("...cij,...jcd->...icd", alpha, z).reshape(x.shape)
            x = nn.LayerNorm(dtype=self.dtype, name=f"ln_{i}")(x + nn.elu(h))
        out = _head(2 * self.num_antennas)(x.astype(jnp.float32))
        return _beams(self, out, H, P, mask)

    @staticmethod
    def _made_for(params) -> dict:
        a = param_shape(params, "a_dst_0")  # (C, F / C)
        return {**_graph_made_for(params, "W_"), "num_heads": a[0] if a else None}


class GPT(nn.Module):
    """Decoder-only baseline [33]: BERT's embedding and encoder blocks under a causal mask; any K.

    Attributes:
      num_antennas: N (input width 2N, output width 2N).
      features: token width F.
      num_layers: number of (causal) Transformer blocks.
      num_heads: attention heads; must divide ``features``.
      mlp_ratio: FFN hidden width ``mlp_ratio * F``.
      dtype: computation dtype of the embedding and blocks.

    Call: ``apply(variables, H, P, mask=None) -> W`` (module docstring). User k's beam before the GPA
    depends on the channels of users ``0..k`` only.
    """

    num_antennas: int
    features: int
    num_layers: int
    num_heads: int
    mlp_ratio: int = 4
    dtype: Any = None

    @nn.compact
    def __call__(self, H: jax.Array, P: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        check_sizes(self, num_antennas=1, features=1, num_layers=0, num_heads=1, mlp_ratio=1)
        check_variables(self, self._made_for)
        H, mask = _inputs(H, mask, self.num_antennas)
        K = H.shape[-2]
        x = Embedding(self.features, self.dtype, name="embed")(user_tokens(H))  # eq. 7
        x = Encoder(self.features, self.num_layers, self.num_heads, self.mlp_ratio, self.dtype, name="encoder")(
            x, attention_mask(mask, causal=True, length=K)
        )
        out = _head(2 * self.num_antennas)(x.astype(jnp.float32))
        return _beams(self, out, H, P, mask)

    @staticmethod
    def _made_for(params) -> dict:
        fc = param_shape(params, "embed", "fc", "kernel")  # (2N, F)
        return {
            **_head_made_for(params),
            "features": fc[1] if fc else None,
            **(encoder_made_for(params.get("encoder", {})) if fc else {}),
        }
