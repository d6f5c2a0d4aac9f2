"""The models and losses of a preset: the one place where a job turns a :class:`jaxbeam.configs.Config`
into a Flax module (:func:`build_model` over :data:`MODELS`; :func:`bert_model`, :func:`ubert_model`) or a
training loss (:func:`loss_for`). A new single-task model is registered by one entry in :data:`MODELS`."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

import jaxbeam as jb
from jaxbeam.configs import Config
from jaxbeam.train import losses


def compute_dtype(m) -> jnp.dtype | None:
    """The models' computation dtype from :attr:`jaxbeam.configs.ModelConfig.dtype`: None for ``"float32"``
    (the inputs' dtype), else that dtype; parameters and optimizer state stay float32 (mixed precision)."""
    return None if m.dtype == "float32" else jnp.dtype(m.dtype)


def bert_model(cfg: Config, N: int | None = None, dtype=None):
    """BERT of the preset's size; ``dtype`` (default: the preset's compute dtype) for its matmuls."""
    m = cfg.model
    return jb.models.BERT(
        num_antennas=cfg.system.N if N is None else N,
        features=m.features,
        num_layers=m.num_layers,
        num_heads=m.num_heads,
        mlp_ratio=m.mlp_ratio,
        dtype=compute_dtype(m) if dtype is None else dtype,
        domain=m.domain,
        power=m.power,
    )


def loss_for(cfg: Config, utility: str | None = None):
    tc, sy = cfg.train, cfg.system
    return losses.make_loss(
        utility or tc.utility,
        supervised=tc.supervised,
        sigma2=sy.sigma2,
        Pc=sy.Pc,
        lambda1=tc.lambda1,
        lambda2=tc.lambda2,
        similarity=tc.similarity,
    )


def ubert_model(cfg: Config, dtype=None):
    """UBERT of the preset's size (F, L, C, FFN ratio); its parameters fit every K and N."""
    m = cfg.model
    return jb.models.UBERT(
        features=m.features,
        num_layers=m.num_layers,
        num_heads=m.num_heads,
        mlp_ratio=m.mlp_ratio,
        dtype=compute_dtype(m) if dtype is None else dtype,
        head=m.ubert_head,
        sigma2=cfg.system.sigma2,
        domain=m.domain,
        power=m.power,
    )


def ubert_batch_size(batch_size: int, num_devices: int | None = None) -> int:
    """The preset batch size rounded down to a multiple of ``lcm(3, devices)`` (at least that): Algorithm 1
    needs B / 3 samples per task, and the data-parallel step an equal share per device."""
    q = math.lcm(3, jax.device_count() if num_devices is None else num_devices)
    return max(q, batch_size - batch_size % q)


def _encoder_size(m) -> dict:
    return {"features": m.features, "num_layers": m.num_layers, "num_heads": m.num_heads, "dtype": compute_dtype(m)}


def _small(m) -> dict:
    return {"features": m.features, "num_layers": m.num_layers, "dtype": compute_dtype(m)}


MODELS: dict[str, Callable] = {
    # kind -> (model config, K, N) -> module with BERT's call signature ``apply(v, H, P)``
    "bert": lambda m, K, N: jb.models.BERT(num_antennas=N, domain=m.domain, power=m.power, **_encoder_size(m)),
    "gpt": lambda m, K, N: jb.models.GPT(num_antennas=N, **_encoder_size(m)),
    "gat": lambda m, K, N: jb.models.GAT(num_antennas=N, **_encoder_size(m)),
    "gcn": lambda m, K, N: jb.models.GCN(num_antennas=N, **_small(m)),
    "mlp": lambda m, K, N: jb.models.MLP(num_users=K, num_antennas=N, **_small(m)),
    "cnn": lambda m, K, N: jb.models.CNN(num_users=K, num_antennas=N, **_small(m)),
}
"""Single-task models of Fig. 3 by kind, sized by the preset's :class:`jaxbeam.configs.ModelConfig`."""


def build_model(kind: str, cfg: Config, K: int, N: int):
    """A fresh single-task module of ``kind`` (a key of :data:`MODELS`) sized by ``cfg`` for (K, N)."""
    if kind not in MODELS:
        raise ValueError(f"kind must be one of {tuple(MODELS)}; got {kind!r}")
    return MODELS[kind](cfg.model, K, N)
