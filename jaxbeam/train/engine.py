"""Train state, optimiser and the pure, jitted, data-parallel train / eval steps.

Data parallelism follows the ``jit`` + ``NamedSharding`` idiom (docs/design.md;
flax ``examples/lm1b``): the batch is sharded over a 1-D ``"data"`` mesh of all devices, the state is
replicated, and the loss is a mean over the *global* batch, so XLA inserts the gradient all-reduce
(the ``lax.pmean`` of the pmap idiom) itself. There is no explicit ``pmean`` to get wrong: under
``shard_map``'s varying-axes check the gradient of a replicated parameter already comes out summed, and
a further ``pmean`` would scale it by the device count. ``tests/test_train.py`` compares the gradients
and one update on several devices (2 in the tests) against a single device.

The train state is a plain dict pytree ``{"params", "opt_state", "step", "rng"}``.
Batches are dicts of arrays with a leading batch axis: ``"H"`` and ``"P"`` always; ``"mask"``,
``"antenna_mask"``, ``"task"`` go to the model; ``"W_label"``, ``"sigma2"`` to the loss; ``"weight"``
(float ``(B,)``, 0 for padding) weights the mean. Unknown keys pass through to the loss function.
A source that keeps its data on the devices (``ChannelSource`` / ``ArraySource(on_device=True)``) yields
smaller batches (keys or sample indices) that its ``prepare(batch, resident)`` expands inside every jitted
step, ``resident`` being the source's data set placed on the devices once (replicated).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

Batch = dict[str, Any]
State = dict[str, Any]
LossFn = Callable[[jax.Array, Batch], tuple[jax.Array, dict]]
Forward = Callable[[nn.Module, Any, Batch], jax.Array]

MODEL_KEYWORDS = ("mask", "antenna_mask")


def default_forward(model: nn.Module, params: Any, batch: Batch) -> jax.Array:
    """``model.apply({"params": params}, H, P[, task], mask=..., antenna_mask=...)`` from a batch dict.

    Fits BERT (``apply(v, H, P, mask=None)``) and UBERT (``apply(v, H, P, task, mask=None,
    antenna_mask=None)``): ``"task"`` is passed positionally when present, the masks by keyword.
    """
    args = [batch["H"], batch["P"]]
    if "task" in batch:
        args.append(batch["task"])
    kwargs = {k: batch[k] for k in MODEL_KEYWORDS if k in batch}
    return model.apply({"params": params}, *args, **kwargs)


def initialize_distributed(**kwargs) -> None:
    """Multi-host set-up: ``jax.distributed.initialize(**kwargs)``. Call only for multi-process runs,
    before any other JAX call; every process then runs the same program (one ``fit`` each).

    A multi-host run is the same command on every host, each calling this first (on Cloud TPU / SLURM /
    Open MPI the arguments are found automatically; elsewhere pass ``coordinator_address="host0:port"``,
    ``num_processes`` and ``process_id``). Every process then builds the same data source (same seed) and
    iterates the same global batches; :meth:`Engine.put_batch` transfers only the process's own block of
    each batch to its devices, gradients are reduced across all devices by XLA (on CPU hosts through
    gloo, ``jax_cpu_collectives_implementation``, the default), and checkpoints go to one ``workdir`` on a
    file system every host sees (orbax coordinates the writes; the metrics log is written by process 0).
    ``tests/test_multiprocess.py`` runs 2 processes x 1 CPU device against 1 process x 2 devices.
    """
    jax.distributed.initialize(**kwargs)


def data_mesh(devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
    """A 1-D mesh named ``"data"`` over ``devices`` (default: all devices of all processes).

    Axis type ``Auto`` (``jax.make_mesh`` defaults to ``Explicit``, which would require every input to be
    placed by hand): jit then propagates the shardings given in ``in_shardings``.
    """
    devices = list(jax.devices() if devices is None else devices)
    return jax.make_mesh((len(devices),), ("data",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices)


def make_optimizer(
    learning_rate: float,
    total_steps: int,
    *,
    labels: Any | None = None,
    final_learning_rate: float = 0.0,
) -> optax.GradientTransformation:
    """Adam with cosine decay from ``learning_rate`` to ``final_learning_rate`` over ``total_steps`` (Sec. VI-A3).

    Args:
      learning_rate: initial learning rate (paper: 2e-4 pre-training, 2e-5 fine-tuning).
      total_steps: steps of the whole run (epochs x steps per epoch).
      final_learning_rate: the rate the cosine ends at (BERT4beam: 0; paper 002: 3e-5 from 1e-4).
      labels: optional pytree like the params with leaves ``"train"`` / ``"frozen"``
        (:func:`jaxbeam.train.finetune.trainable_labels`); frozen leaves get zero updates and no Adam state.
    """
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0; got {learning_rate}")
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0; got {total_steps}")
    if not 0 <= final_learning_rate <= learning_rate:
        raise ValueError(
            f"final_learning_rate must be in [0, learning_rate = {learning_rate}]; got {final_learning_rate}"
        )
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, total_steps, alpha=final_learning_rate / learning_rate))
    if labels is None:
        return tx
    return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()}, labels)


def init_state(
    model: nn.Module,
    tx: optax.GradientTransformation,
    key: jax.Array,
    example_batch: Batch,
    *,
    params: Any | None = None,
    forward: Forward = default_forward,
) -> State:
    """A fresh train state ``{"params", "opt_state", "step", "rng"}`` (params from ``model.init`` unless given).

    ``key`` is a raw ``uint32`` key (``jax.random.PRNGKey``), checkpointable as a plain array.
    """
    init_key, rng = jax.random.split(key)
    if params is None:

        def _init(k, batch):
            return model.init(k, *_init_args(batch), **{k2: batch[k2] for k2 in MODEL_KEYWORDS if k2 in batch})

        params = _init(init_key, example_batch)["params"]
    return {"params": params, "opt_state": tx.init(params), "step": jnp.zeros((), jnp.int32), "rng": rng}


def _init_args(batch):
    args = [batch["H"], batch["P"]]
    if "task" in batch:
        args.append(batch["task"])
    return args


def _weighted_mean(x, weight):
    if weight is None:
        return jnp.mean(x)
    return jnp.sum(x * weight) / jnp.maximum(jnp.sum(weight), 1e-12)


def loss_and_metrics(params, batch: Batch, *, model, loss_fn: LossFn, forward: Forward = default_forward):
    """Mean loss over the (global) batch and the mean of every per-sample metric."""
    W = forward(model, params, batch)
    loss, metrics = loss_fn(W, batch)
    weight = batch.get("weight")
    means = {k: _weighted_mean(v, weight) for k, v in metrics.items()}
    return _weighted_mean(loss, weight), means


def train_step(state: State, batch: Batch, *, model, tx, loss_fn: LossFn, forward: Forward = default_forward):
    """One Adam step on ``batch``: ``(state, batch) -> (state, {"loss", <metric means>})``. Pure."""
    grad_fn = jax.value_and_grad(
        functools.partial(loss_and_metrics, model=model, loss_fn=loss_fn, forward=forward), has_aux=True
    )
    (loss, metrics), grads = grad_fn(state["params"], batch)
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    new_state = {"params": params, "opt_state": opt_state, "step": state["step"] + 1, "rng": state["rng"]}
    return new_state, {"loss": loss, **metrics}


def train_steps(state: State, batches: Batch, *, model, tx, loss_fn: LossFn, forward: Forward = default_forward):
    """:func:`train_step` over a chunk of batches stacked on a leading axis ``(n, B, ...)``, in one
    ``lax.scan``: ``(state, batches) -> (state, {"loss": (n,), <metrics>: (n,)})``, the same updates as ``n``
    calls. Pure."""
    step = functools.partial(train_step, model=model, tx=tx, loss_fn=loss_fn, forward=forward)
    return jax.lax.scan(step, state, batches)


def eval_step(params, batch: Batch, *, model, loss_fn: LossFn, forward: Forward = default_forward) -> dict:
    """Weighted sums over ``batch``: ``{"weight", "loss", <metrics>}`` (divide by ``"weight"`` for means)."""
    W = forward(model, params, batch)
    loss, metrics = loss_fn(W, batch)
    weight = batch.get("weight", jnp.ones(loss.shape, loss.dtype))
    out = {"weight": jnp.sum(weight), "loss": jnp.sum(weight * loss)}
    out.update({k: jnp.sum(weight * v) for k, v in metrics.items()})
    return out


def _with_resident(fn, prepare):
    """``fn(*args, batch)`` as the jitted ``step(*args, batch, resident)``: the batch expanded by ``prepare``
    first (the forward pass and the loss then see the same channels, labels and augmentation)."""

    def step(*args):
        *head, batch, resident = args
        return fn(*head, batch if prepare is None else prepare(batch, resident))

    return step


class _Bound:
    """A jitted ``fn(*args, resident)`` called as ``fn(*args)``: calls and ``.lower(*args)`` pass the engine's
    resident data (the lowered program, once compiled, takes it as its last argument)."""

    def __init__(self, fn, engine):
        self.fn, self.engine = fn, engine

    def __call__(self, *args):
        return self.fn(*args, self.engine.resident)

    def lower(self, *args):
        return self.fn.lower(*args, self.engine.resident)


class Engine:
    """The jitted, data-parallel steps of one (model, loss, optimiser) on one mesh.

    ``prepare`` (optional) maps each batch inside the jitted steps before the model and the loss see it,
    as ``prepare(batch, resident)``; ``resident`` (optional, a dict of host arrays) is placed on every
    device once, replicated, and handed to it (:class:`jaxbeam.train.ChannelSource`: channels drawn on the
    device from per-sample keys; :class:`jaxbeam.train.ArraySource` with ``on_device=True``: the data set
    resident, batches gathered from sample indices). ``source`` takes both from a data source's attributes.

    Attributes:
      train_step: ``(state, batch) -> (state, metrics)``, state donated, batch sharded over ``"data"``.
      train_chunk: ``(state, batches) -> (state, metrics)`` for ``n`` batches stacked ``(n, B, ...)``
        (:func:`train_steps`: one dispatch for ``n`` steps; one compilation per distinct ``n``).
      eval_step: ``(params, batch) -> sums`` (see :func:`eval_step`).
      grads: ``(params, batch) -> grads`` of the mean loss (for tests and diagnostics).
      resident: the resident data on the devices (``{}`` without); the four jitted programs take it as a
        last argument, which these attributes supply (``.lower(state, batch)`` too; a compiled program is
        called with it: ``compiled(state, batch, engine.resident)``).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        tx: optax.GradientTransformation,
        *,
        mesh: jax.sharding.Mesh | None = None,
        forward: Forward = default_forward,
        prepare: Callable[[Batch, Batch], Batch] | None = None,
        resident: Batch | None = None,
        source: Any | None = None,
    ):
        if source is not None:
            if prepare is not None or resident is not None:
                raise ValueError("give source, or prepare / resident, not both")
            prepare, resident = getattr(source, "prepare", None), getattr(source, "resident", None)
        if resident and prepare is None:
            raise ValueError("resident data needs a prepare(batch, resident) that reads it")
        self.prepare = prepare
        self.model, self.loss_fn, self.tx, self.forward = model, loss_fn, tx, forward
        self.mesh = data_mesh() if mesh is None else mesh
        self.replicated = NamedSharding(self.mesh, P())
        self.data_sharding = NamedSharding(self.mesh, P("data"))
        self.resident = self._place_resident(resident or {})
        kw = dict(model=model, loss_fn=loss_fn, forward=forward)
        repl, data = self.replicated, self.data_sharding
        train = _with_resident(functools.partial(train_step, tx=tx, **kw), prepare)
        self.train_step = _Bound(
            jax.jit(train, in_shardings=(repl, data, repl), out_shardings=(repl, repl), donate_argnums=0), self
        )
        self.chunk_sharding = NamedSharding(self.mesh, P(None, "data"))

        def chunk(state, batches, resident):  # :func:`train_steps` with each batch prepared
            return jax.lax.scan(lambda st, b: train(st, b, resident), state, batches)

        chunk_in = (repl, self.chunk_sharding, repl)
        self.train_chunk = _Bound(
            jax.jit(chunk, in_shardings=chunk_in, out_shardings=(repl, repl), donate_argnums=0), self
        )
        evaluate = _with_resident(functools.partial(eval_step, **kw), prepare)
        self.eval_step = _Bound(jax.jit(evaluate, in_shardings=(repl, data, repl), out_shardings=repl), self)

        def _grads(params, batch):
            return jax.grad(lambda p: loss_and_metrics(p, batch, **kw)[0])(params)

        self.grads = _Bound(
            jax.jit(_with_resident(_grads, prepare), in_shardings=(repl, data, repl), out_shardings=repl), self
        )
        self._in_flight = None  # metrics of the last step dispatched by :meth:`step`

    def _place_resident(self, resident: Batch) -> Batch:
        """Every array of ``resident`` on every device of the mesh (each process passes the whole array)."""
        return {
            k: jax.make_array_from_process_local_data(self.replicated, np.asarray(v), np.shape(v))
            for k, v in resident.items()
        }

    def step(self, state: State, batch: Batch) -> tuple[State, dict]:
        """``train_step`` on a host batch, with the host at most one step ahead of the devices.

        Unbounded asynchronous dispatch deadlocks XLA:CPU (jaxlib 0.10, seen with 8 host devices on 2
        cores, jax-ml/jax#25861): every queued step parks a thread of the shared pool waiting for its
        inputs until none is left for the step that would produce them. Waiting for step t - 1 before
        returning step t keeps one step queued (the host still prepares the next batch while the
        device works) and costs nothing measurable on an accelerator.
        """
        state, metrics = self.train_step(state, self.put_batch(batch))
        if self._in_flight is not None:
            jax.block_until_ready(self._in_flight)
        self._in_flight = metrics
        return state, metrics

    def steps(self, state: State, batches: Sequence[Batch]) -> tuple[State, dict]:
        """:attr:`train_chunk` on a list of host batches (one dispatch), the host at most one chunk ahead
        (see :meth:`step`); metrics are ``(n,)`` per key."""
        state, metrics = self.train_chunk(state, self.put_chunk(batches))
        if self._in_flight is not None:
            jax.block_until_ready(self._in_flight)
        self._in_flight = metrics
        return state, metrics

    def put_chunk(self, batches: Sequence[Batch]) -> Batch:
        """Stack host batches to ``(n, B, ...)`` and place them sharded over ``"data"`` on the batch axis
        (each process transfers its own rows, as :meth:`put_batch`)."""
        B = _rows(batches[0])
        if B % self.num_shards:
            raise ValueError(f"batch size {B} must be divisible by the number of devices {self.num_shards}")
        lo, hi = self._local_rows(B)

        def put(*xs):
            x = np.stack([np.asarray(v) for v in xs])
            return jax.make_array_from_process_local_data(self.chunk_sharding, x[:, lo:hi], x.shape)

        return {k: put(*(b[k] for b in batches)) for k in batches[0]}

    @property
    def num_shards(self) -> int:
        return self.mesh.devices.size

    def put_batch(self, batch: Batch) -> Batch:
        """Place a host batch (numpy, the *global* batch: every process passes the same one) sharded over
        ``"data"``.

        Each process transfers only the rows its own devices hold (``jax.make_array_from_process_local_data``):
        on one host, all of them; on ``n`` hosts, the contiguous block of ``B / n`` rows that the data
        sharding assigns to this process's devices.
        """
        B = _rows(batch)
        if B % self.num_shards:
            raise ValueError(f"batch size {B} must be divisible by the number of devices {self.num_shards}")
        lo, hi = self._local_rows(B)

        def put(x):
            x = np.asarray(x)
            return jax.make_array_from_process_local_data(self.data_sharding, x[lo:hi], x.shape)

        return {k: put(v) for k, v in batch.items()}

    def _local_rows(self, B: int) -> tuple[int, int]:
        """The rows ``[lo, hi)`` of a global batch of ``B`` held by this process's devices."""
        index = self.data_sharding.addressable_devices_indices_map((B,))
        rows = sorted({(r.start or 0, B if r.stop is None else r.stop) for r, *_ in index.values()})
        if any(stop != start for (_, stop), (start, _) in zip(rows, rows[1:], strict=False)):
            raise ValueError(f"this process's devices hold rows {rows} of the batch, not one block (mesh order?)")
        return rows[0][0], rows[-1][1]

    def put_state(self, state: State) -> State:
        """Replicate a state (or any pytree) over the mesh."""
        return jax.device_put(state, self.replicated)

    def init_state(self, key: jax.Array, example_batch: Batch, *, params: Any | None = None) -> State:
        """:func:`init_state`, placed replicated on the mesh."""
        small = {k: np.asarray(v)[:1] for k, v in example_batch.items()}
        if self.prepare is not None:
            small = jax.device_get(self.prepare(small, self.resident))
        state = init_state(self.model, self.tx, key, small, params=params, forward=self.forward)
        return self.put_state(state)

    def evaluate(self, params, arrays: Batch, *, batch_size: int = 1024) -> dict[str, float]:
        """Means of loss and metrics over a whole data set (dict of arrays), padding the last batch."""
        totals = None
        for batch in eval_batches(arrays, batch_size, multiple=self.num_shards):
            sums = self.eval_step(params, self.put_batch(batch))
            totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
            jax.block_until_ready(totals)  # one batch in flight at a time (see :meth:`step`)
        totals = jax.device_get(totals)
        w = float(totals.pop("weight"))
        return {k: float(v) / w for k, v in totals.items()}


def _rows(batch: Batch) -> int:
    """The batch size: every entry has it as its leading axis (``"H"`` may be keys or indices)."""
    return len(next(iter(batch.values())))


def eval_batches(arrays: Batch, batch_size: int, *, multiple: int = 1):
    """Yield consecutive batches of ``arrays`` with a ``"weight"`` field; the last one is padded (weight 0)
    up to a multiple of ``multiple`` (the device count) by repeating its first sample."""
    S = len(arrays["H"])
    batch_size = max(multiple, batch_size - batch_size % multiple)
    for start in range(0, S, batch_size):
        batch = {k: np.asarray(v[start : start + batch_size]) for k, v in arrays.items()}
        n = len(batch["H"])
        pad = (-n) % multiple
        weight = np.ones(n + pad, np.float32)
        if pad:
            weight[n:] = 0
            batch = {k: np.concatenate([v, np.repeat(v[:1], pad, axis=0)]) for k, v in batch.items()}
        batch["weight"] = weight
        yield batch
