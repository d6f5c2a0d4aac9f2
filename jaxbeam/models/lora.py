r"""Low-rank adapters for any jaxbeam model: LoRA (paper 003 eqs. 22-23, paper 004) and MoE-LoRA (003 eq. 24).

The adapted model is the unchanged Flax module, applied under a method interceptor
(``flax.linen.intercept_methods``) that adds the low-rank term to the output of every ``Dense`` /
``DenseGeneral`` whose kernel path matches one of :attr:`LoRAConfig.targets`:

.. math::
    y = W_0 x + \frac{\alpha}{r} B A x                                   \quad (23) \\
    y = W_0 x + \frac{\alpha}{r} \sum_{k=1}^{N_e} \omega_k B_k A_k x,
        \quad \omega = \mathrm{softmax}(G_{\tau})                        \quad (24)

with ``A`` ``(r, d_in)`` random and ``B`` ``(d_out, r)`` zero at the start, so the adapted model starts equal
to the pre-trained one. For MoE-LoRA each adapted layer has ``N_e`` experts and a gate table ``G`` of shape
``(num_tasks, N_e)`` (zero at the start: uniform weights); sample ``b`` of task ``tau_b`` mixes the experts
with ``softmax(G[tau_b])``, so tasks share experts and keep their own mix (:func:`expert_weights`).
A kernel with several input or output axes (the attention projections' ``DenseGeneral``) is adapted as the
matrix ``(prod in, prod out)``. Plain LoRA merges into the base kernels for inference (:func:`merge`).

The adapters are a pytree ``{"layers": {path: {"A", "B"}}, "gate": {path: G}}`` apart from the base
parameters; ``path`` is the kernel's module path joined by ``"/"`` (``"encoder/block_0/ffn_in"``).

Training with the engine (:func:`jaxbeam.train.fit`): the parameters are ``{"base", "lora"}``
(:func:`combine`), :func:`forward` applies the model with the adapters and the base behind
``stop_gradient``, and :func:`trainable` freezes the base (zero updates, no Adam state), so only the
adapters train, checkpoint and resume. Storing them apart from the base: :mod:`jaxbeam.jobs.adapters`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ATTENTION = r"mha/(query|key|value|out)$"
FFN = r"ffn_(in|out)$"


@dataclasses.dataclass(frozen=True)
class LoRAConfig:
    """Which kernels get adapters, and their size.

    Attributes:
      rank: r, the rank of every adapter (003: 8).
      alpha: the scale numerator of eqs. 23-24 (the update is ``alpha / rank * B A``).
      targets: regular expressions searched in each Dense kernel's module path (``"encoder/block_0/mha/query"``);
        a kernel matching any of them is adapted. Default: attention Q/K/V/O (:data:`ATTENTION`; 4.1 % of the
        ``cpu`` BERT's parameters at rank 8); :data:`FFN` adds both FFN layers (003's choice).
      experts: N_e; 0 = plain LoRA (eq. 23), >= 1 = MoE-LoRA (eq. 24) with a task gate per adapted layer.
      num_tasks: rows of each gate table (MoE-LoRA; task ids ``0 .. num_tasks - 1``, :data:`jaxbeam.TASKS`).
    """

    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = (ATTENTION,)
    experts: int = 0
    num_tasks: int = 3

    def __post_init__(self):
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"rank must be a positive int; got {self.rank!r}")
        if not self.alpha > 0:
            raise ValueError(f"alpha must be > 0; got {self.alpha!r}")
        if isinstance(self.targets, str) or not self.targets:
            raise ValueError(f"targets must be a non-empty tuple of regular expressions; got {self.targets!r}")
        for t in self.targets:
            try:
                re.compile(t)
            except re.error as e:
                raise ValueError(f"targets entry {t!r} is not a regular expression: {e}") from None
        if isinstance(self.experts, bool) or not isinstance(self.experts, int) or self.experts < 0:
            raise ValueError(f"experts must be an int >= 0 (0 = plain LoRA); got {self.experts!r}")
        if self.num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1; got {self.num_tasks!r}")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def _kernels(params) -> dict[str, tuple[int, ...]]:
    """``{module path: kernel shape}`` of every kernel in a Flax parameter tree."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = [getattr(k, "key", str(k)) for k in path]
        if names and names[-1] == "kernel":
            out["/".join(names[:-1])] = tuple(np.shape(leaf))
    return out


def _split(path: str, shape: Sequence[int]) -> tuple[int, int]:
    """``(d_in, d_out)`` of a kernel: attention outputs take all but the last axis as input (DenseGeneral
    with ``axis=(-2, -1)``), every other kernel its first axis."""
    n_in = len(shape) - 1 if path.endswith("mha/out") else 1
    return int(np.prod(shape[:n_in])), int(np.prod(shape[n_in:]))


def targets(params, config: LoRAConfig) -> dict[str, tuple[int, int]]:
    """``{path: (d_in, d_out)}`` of the kernels ``config`` adapts in ``params``.

    Raises:
      ValueError: a pattern matches no kernel (the message lists the kernels), or ``rank`` exceeds
        ``min(d_in, d_out)`` of an adapted kernel.
    """
    kernels = _kernels(params)
    chosen = {}
    for pattern in config.targets:
        hits = [p for p in kernels if re.search(pattern, p)]
        if not hits:
            raise ValueError(f"LoRA target {pattern!r} matches no Dense kernel; the model's kernels: {sorted(kernels)}")
        chosen.update({p: _split(p, kernels[p]) for p in hits})
    for p, (d_in, d_out) in chosen.items():
        if config.rank > min(d_in, d_out):
            raise ValueError(f"rank {config.rank} exceeds the width of {p} ({d_in} -> {d_out}); use rank <= "
                             f"{min(d_in, d_out)}")  # fmt: skip
    return dict(sorted(chosen.items()))


def init(key: jax.Array, params, config: LoRAConfig) -> dict:
    """Fresh adapters for ``params``: ``A ~ N(0, 1 / d_in)``, ``B = 0``, gates 0 (the model is unchanged).

    Returns ``{"layers": {path: {"A": (r, d_in), "B": (d_out, r)}}, "gate": {}}`` for LoRA, with a leading
    expert axis ``N_e`` on ``A`` and ``B`` and gates ``(num_tasks, N_e)`` for MoE-LoRA; float32.
    """
    chosen = targets(params, config)
    lead = (config.experts,) if config.experts else ()
    layers, gate = {}, {}
    for k, (path, (d_in, d_out)) in zip(jax.random.split(key, len(chosen)), chosen.items(), strict=True):
        A = jax.random.normal(k, (*lead, config.rank, d_in), jnp.float32) / np.sqrt(d_in)
        layers[path] = {"A": A, "B": jnp.zeros((*lead, d_out, config.rank), jnp.float32)}
        if config.experts:
            gate[path] = jnp.zeros((config.num_tasks, config.experts), jnp.float32)
    return {"layers": layers, "gate": gate}


def count(adapters) -> int:
    """Trainable parameters of ``adapters``."""
    return sum(int(np.prod(np.shape(x))) for x in jax.tree.leaves(adapters))


def expert_weights(adapters, task: jax.Array) -> dict[str, jax.Array]:
    """MoE-LoRA expert weights ``softmax(G[task])`` per adapted layer: ``{path: (..., N_e)}`` (003 Fig. 6)."""
    task = jnp.asarray(task, jnp.int32)
    return {p: jax.nn.softmax(G[jnp.clip(task, 0, G.shape[0] - 1)], axis=-1) for p, G in adapters["gate"].items()}


def _delta(x: jax.Array, ad: dict, n_in: int, out_shape, scale: float, weights: jax.Array | None) -> jax.Array:
    """``scale * B A x`` for ``x`` ``(B, ..., *in)`` (experts mixed by ``weights`` ``(B, N_e)``)."""
    xf = x.reshape(*x.shape[: x.ndim - n_in], -1).astype(jnp.float32)
    if weights is None:
        y = (xf @ ad["A"].T) @ ad["B"].T
    else:  # per expert, then mixed per sample: sum_k w_bk B_k A_k x
        h = jnp.einsum("b...i,eri->b...er", xf, ad["A"])
        y = jnp.einsum("b...er,eor,be->b...o", h, ad["B"], weights)
    return scale * y.reshape(*y.shape[:-1], *out_shape)


def interceptor(adapters, config: LoRAConfig, task: jax.Array | None = None) -> Callable:
    """A ``flax.linen.intercept_methods`` interceptor adding eq. 23 (or eq. 24 with per-sample ``task``
    ``(B,)``) to the adapted Dense layers' outputs. Used by :func:`apply`."""
    layers = adapters["layers"]
    if config.experts and task is None:
        raise ValueError("MoE-LoRA needs the task ids of the batch (task=(B,) ints)")
    weights = expert_weights(adapters, task) if config.experts else {}

    def intercept(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name != "__call__" or not isinstance(module, nn.Dense | nn.DenseGeneral):
            return out
        path = "/".join(module.path)
        if path not in layers:
            return out
        x = args[0]
        axis = getattr(module, "axis", -1)
        n_in = len(axis) if isinstance(axis, Sequence) else 1
        out_shape = out.shape[x.ndim - n_in :]
        d = _delta(x, layers[path], n_in, out_shape, config.scale, weights.get(path))
        return out + d.astype(out.dtype)

    return intercept


def apply(model: nn.Module, params, adapters, config: LoRAConfig, *args, task=None, **kwargs):
    """``model.apply({"params": params}, *args, **kwargs)`` with the adapters added (eqs. 23-24)."""
    with nn.intercept_methods(interceptor(adapters, config, task)):
        return model.apply({"params": params}, *args, **kwargs)


def merge(params, adapters, config: LoRAConfig, *, task: int | None = None):
    """The base parameters with the adapters folded in, ``W_0 + (alpha / r) (B A)^T`` (eq. 22), for inference
    at the base model's cost; the merged model computes what the adapted one does. MoE-LoRA merges the
    experts mixed by one task's weights, ``sum_k w_k B_k A_k`` (``task`` required)."""
    if config.experts and task is None:
        raise ValueError("MoE-LoRA mixes its experts per task: merge the weights of one task (task=id)")
    layers = adapters["layers"]
    weights = expert_weights(adapters, jnp.asarray(task)) if config.experts else {}

    def fold(path, leaf):
        names = [getattr(k, "key", str(k)) for k in path]
        key = "/".join(names[:-1])
        if names[-1] != "kernel" or key not in layers:
            return leaf
        ad = layers[key]
        if config.experts:
            BA = jnp.einsum("e,eor,eri->oi", weights[key], ad["B"], ad["A"])
        else:
            BA = ad["B"] @ ad["A"]
        return leaf + (config.scale * BA.T).reshape(leaf.shape).astype(leaf.dtype)

    return jax.tree_util.tree_map_with_path(fold, params)


def check(params, adapters, config: LoRAConfig) -> None:
    """``ValueError`` unless ``adapters`` fit ``params`` and ``config`` (same layers, shapes, experts)."""
    want = jax.eval_shape(lambda: init(jax.random.key(0), params, config))
    got = jax.tree.map(lambda x: tuple(np.shape(x)), adapters)
    exp = jax.tree.map(lambda x: tuple(x.shape), want)
    if got != exp:
        missing = sorted(set(exp["layers"]) ^ set(got.get("layers", {}))) if isinstance(got, dict) else []
        raise ValueError(
            "the adapters do not fit this model and LoRA config"
            + (f" (layers only on one side: {missing})" if missing else f" (shapes {got} against {exp})")
        )


def combine(base, adapters) -> dict:
    """The parameter tree :func:`forward` trains: ``{"base": base, "lora": adapters}``."""
    return {"base": base, "lora": adapters}


def trainable(params: dict, base_labels=None) -> dict:
    """``"train"`` for every adapter leaf of :func:`combine`'s tree and, for the base, ``base_labels`` (a tree
    of ``"train"`` / ``"frozen"`` like the base, e.g. :func:`jaxbeam.train.trainable_labels`; default all
    ``"frozen"``): the ``trainable_labels`` of :func:`jaxbeam.train.fit`."""
    base = jax.tree.map(lambda _: "frozen", params["base"]) if base_labels is None else base_labels
    return {"base": base, "lora": jax.tree.map(lambda _: "train", params["lora"])}


def forward(config: LoRAConfig, *, task: int | None = None, base_labels=None) -> Callable:
    """The engine's ``forward(model, params, batch)`` for :func:`combine`'s parameters (eqs. 23-24): the
    batch's ``H``, ``P`` (and ``task``, passed on to the model, e.g. UBERT) and masks.

    ``task``: the task id MoE-LoRA's gate reads when the batch has no ``"task"`` (single-task BERT runs).
    ``base_labels``: as :func:`trainable`; base leaves labelled ``"frozen"`` (all, by default) are behind
    ``stop_gradient``, so no gradient is computed for them.
    """
    if config.experts and task is not None and not 0 <= task < config.num_tasks:
        raise ValueError(f"task must be in [0, {config.num_tasks}); got {task}")

    def fwd(model, params, batch):
        args = [batch["H"], batch["P"]]
        if "task" in batch:
            args.append(batch["task"])
        kwargs = {k: batch[k] for k in ("mask", "antenna_mask") if k in batch}
        tasks = batch.get("task")
        if tasks is None and config.experts:
            if task is None:
                raise ValueError("MoE-LoRA on a batch without 'task' needs forward(config, task=id)")
            tasks = jnp.full(jnp.shape(batch["P"])[:1], task, jnp.int32)
        if base_labels is None:
            base = jax.lax.stop_gradient(params["base"])
        else:
            base = jax.tree.map(
                lambda x, label: x if label == "train" else jax.lax.stop_gradient(x), params["base"], base_labels
            )
        return apply(model, base, params["lora"], config, *args, task=tasks, **kwargs)

    return fwd
