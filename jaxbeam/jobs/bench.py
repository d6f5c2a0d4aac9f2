"""Jitted inference latency and throughput of the beamforming models, and training-step throughput.

Used by ``python -m benchmarks.inference_latency`` and ``jaxbeam bench`` (``--train``:
:func:`train_throughput`). Methodology (STYLE.md 8):
compile ahead of time with ``jit(f).lower(...).compile()`` and report that time separately; warm up;
then time single calls with ``block_until_ready`` and report the median and 90th percentile. FLOPs per
call come from XLA's own cost analysis of the compiled program.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxbeam as jb
from jaxbeam.jobs.report import markdown_table


@dataclasses.dataclass(frozen=True)
class ModelSize:
    """The architecture knobs a latency figure depends on."""

    name: str
    features: int
    num_layers: int
    num_heads: int


# Benchmark sizes mirror the presets; kept here so the benchmark runs even where configs change.
def preset_sizes() -> dict[str, ModelSize]:
    from jaxbeam import configs

    out = {}
    for name in ("cpu", "paper"):
        m = configs.get_preset(name).model
        out[name] = ModelSize(name, m.features, m.num_layers, m.num_heads)
    return out


def time_calls(fn: Callable[[], object], *, min_repeats: int = 5, min_seconds: float = 1.0, max_repeats: int = 200):
    """Wall times [s] of repeated calls of ``fn`` (each blocked until ready), after one warm-up call."""
    jax.block_until_ready(fn())
    times = []
    start = time.perf_counter()
    while len(times) < max_repeats and (len(times) < min_repeats or time.perf_counter() - start < min_seconds):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return np.asarray(times)


def compiled_flops(compiled) -> float | None:
    """FLOPs of one call of a compiled program per XLA's cost analysis (None where unavailable)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # some backends do not implement it
        return None
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else None
    if not cost or "flops" not in cost:
        return None
    return float(cost["flops"])


def bert_latency(size: ModelSize, K: int, N: int, batch: int, matmul_dtype, *, seed: int = 0, min_seconds=1.0):
    """Latency figures of one jitted BERT forward pass ``H, P -> W``."""
    model = jb.models.BERT(
        num_antennas=N,
        features=size.features,
        num_layers=size.num_layers,
        num_heads=size.num_heads,
        dtype=matmul_dtype,
    )
    key = jax.random.key(seed)
    H = jb.rayleigh(key, (batch,), K, N)
    P = jnp.ones((batch,), jnp.float32)
    params = jax.jit(model.init)(key, H[:1], P[:1])
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
    fwd = jax.jit(model.apply)
    t0 = time.perf_counter()
    compiled = fwd.lower(params, H, P).compile()
    compile_s = time.perf_counter() - t0
    flops = compiled_flops(compiled)
    times = time_calls(lambda: compiled(params, H, P), min_seconds=min_seconds)
    median = float(np.median(times))
    return {
        "model": "bert",
        "preset": size.name,
        "K": K,
        "N": N,
        "batch": batch,
        "matmul_dtype": jnp.dtype(matmul_dtype).name,
        "params": n_params,
        "compile_s": compile_s,
        "median_ms": 1e3 * median,
        "p90_ms": 1e3 * float(np.percentile(times, 90)),
        "per_sample_ms": 1e3 * median / batch,
        "samples_per_s": batch / median,
        "flops_per_sample": None if flops is None else flops / batch,
        "gflops_per_s": None if flops is None else flops / median / 1e9,
        "repeats": len(times),
    }


def environment() -> dict:
    dev = jax.devices()[0]
    return {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device_kind": dev.device_kind,
        "device_count": jax.device_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def matmul_peak(n: int = 2048, dtype=jnp.float32) -> float:
    """Achieved FLOP/s of one large square matmul: the machine's practical peak for the ratio."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    f = jax.jit(jnp.matmul).lower(a, a).compile()
    times = time_calls(lambda: f(a, a), min_seconds=1.0)
    return 2 * n**3 / float(np.median(times))


def write_json(path: str | Path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    return path


def run_inference_benchmark(
    presets: Sequence[str] = ("cpu", "paper"),
    settings: Sequence[tuple[int, int]] = ((6, 12), (8, 16)),
    batches: Sequence[int] = (1, 32, 1024),
    dtypes: Sequence[str] = ("float32", "bfloat16"),
    *,
    min_seconds: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """All latency rows plus the environment and the matmul peak; see :func:`bert_latency`."""
    sizes = preset_sizes()
    rows = []
    for preset in presets:
        for K, N in settings:
            for dt in dtypes:
                for batch in batches:
                    if progress:
                        progress(f"{preset} (K, N) = ({K}, {N}) {dt} batch {batch}")
                    rows.append(bert_latency(sizes[preset], K, N, batch, jnp.dtype(dt), min_seconds=min_seconds))
    peak = matmul_peak()
    for r in rows:
        r["fraction_of_matmul_peak"] = None if r["gflops_per_s"] is None else r["gflops_per_s"] * 1e9 / peak
    return {"environment": environment(), "matmul_peak_gflops_per_s": peak / 1e9, "rows": rows}


def format_rows(result: dict) -> str:
    header = ["preset", "(K, N)", "dtype", "batch", "median ms", "p90 ms", "ms/sample", "compile s", "params"]
    header += ["MFLOP/sample", "GFLOP/s", "of peak"]
    rows = []
    for r in result["rows"]:
        fps = r["flops_per_sample"]
        rows.append(
            [
                r["preset"],
                f"({r['K']}, {r['N']})",
                r["matmul_dtype"],
                r["batch"],
                f"{r['median_ms']:.3f}",
                f"{r['p90_ms']:.3f}",
                f"{r['per_sample_ms']:.4f}",
                f"{r['compile_s']:.2f}",
                f"{r['params']:,}",
                "-" if fps is None else f"{fps / 1e6:.2f}",
                "-" if r["gflops_per_s"] is None else f"{r['gflops_per_s']:.1f}",
                "-" if r["fraction_of_matmul_peak"] is None else f"{100 * r['fraction_of_matmul_peak']:.0f} %",
            ]
        )
    env = result["environment"]
    head = (
        f"BERT forward latency on {env['device_kind']} x{env['device_count']} ({env['backend']}), jax {env['jax']}; "
        f"large-matmul rate {result['matmul_peak_gflops_per_s']:.1f} GFLOP/s\n"
    )
    return head + markdown_table(header, rows)


def _memory(compiled) -> dict:
    """Bytes of a compiled program per XLA's memory analysis (empty where unavailable): arguments, outputs,
    temporaries, and their sum less the donated (aliased) bytes, the footprint of one call."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # some backends do not implement it
        return {}
    if m is None:
        return {}
    out = {k: int(getattr(m, f"{k}_size_in_bytes", 0)) for k in ("argument", "output", "temp", "alias")}
    out["footprint"] = out["argument"] + out["output"] + out["temp"] - out["alias"]
    return out


def _dots(jaxpr, mult: int, out: dict) -> None:
    """Count ``dot_general`` equations of ``jaxpr`` and its sub-jaxprs (a ``scan`` body ``length`` times)."""
    from jax.extend.core import ClosedJaxpr, Jaxpr

    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            lhs, rhs = (v.aval for v in eqn.invars)
            key = (lhs.shape, rhs.shape, lhs.dtype.name, rhs.dtype.name, eqn.params["dimension_numbers"])
            key += (eqn.params.get("preferred_element_type"),)
            out[key] = out.get(key, 0) + mult
        if eqn.primitive.name == "while":
            raise ValueError("a while loop's trip count is unknown: matmul_time counts dots in straight-line code")
        inner = mult * (eqn.params["length"] if eqn.primitive.name == "scan" else 1)
        for v in eqn.params.values():
            for sub in v if isinstance(v, tuple | list) else (v,):
                if isinstance(sub, ClosedJaxpr):
                    _dots(sub.jaxpr, inner, out)
                elif isinstance(sub, Jaxpr):
                    _dots(sub, inner, out)


def _dot_flops(lhs_shape, rhs_shape, dims, complex_: bool) -> float:
    (lc, _), (lb, _) = dims
    contract = int(np.prod([lhs_shape[d] for d in lc]))
    rhs_free = int(np.prod(rhs_shape)) // contract // int(np.prod([lhs_shape[d] for d in lb]))
    return 2.0 * int(np.prod(lhs_shape)) * rhs_free * (4 if complex_ else 1)


def matmul_time(fn: Callable, *args, min_seconds: float = 0.2, repeats: int = 8, seed: int = 0) -> dict:
    """The matmul bound of ``fn(*args)``: every ``dot_general`` of its jaxpr (backward pass included when
    ``fn`` differentiates) compiled and timed alone at its own shapes, dtypes and dimension numbers, on
    the default device, and summed with its multiplicity. Each shape runs ``repeats`` times per call (a
    ``lax.scan``), so that a small dot's time is not its dispatch's.

    A step cannot run faster than ``seconds`` unless XLA overlaps its matmuls; ``step time / seconds`` is
    what the rest of the step (element-wise work, reductions, copies, dispatch) costs on top. Returns
    ``{"dots", "shapes", "seconds", "flops", "gflops_per_s", "top"}`` (``dots``: the count, ``shapes``:
    distinct ones, ``top``: the eight costliest shapes with their count, seconds and GFLOP/s).
    """
    counts: dict = {}
    _dots(jax.make_jaxpr(fn)(*args).jaxpr, 1, counts)
    key = jax.random.key(seed)
    per_shape = []
    for (ls, rs, ldt, rdt, dims, pref), n in counts.items():
        k1, k2, key = jax.random.split(key, 3)
        a = jax.random.normal(k1, (repeats, *ls), ldt)  # distinct left operands: nothing to hoist or cache
        b = jax.random.normal(k2, rs, rdt)

        def dots(a, b, dims=dims, pref=pref):  # one dispatch for ``repeats`` dots
            return jax.lax.scan(lambda c, x: (c, jax.lax.dot_general(x, b, dims, preferred_element_type=pref)), 0, a)[1]

        f = jax.jit(dots).lower(a, b).compile()
        t = float(np.median(time_calls(lambda f=f, a=a, b=b: f(a, b), min_seconds=min_seconds))) / repeats
        fl = _dot_flops(ls, rs, dims, jnp.issubdtype(ldt, jnp.complexfloating))
        shape = f"{ldt}{list(ls)} x {rdt}{list(rs)}, dims {dims}"
        per_shape.append({"shape": shape, "count": n, "seconds": n * t, "flops": n * fl, "gflops_per_s": fl / t / 1e9})
    seconds = sum(r["seconds"] for r in per_shape)
    flops = sum(r["flops"] for r in per_shape)
    return {
        "dots": int(sum(counts.values())),
        "shapes": len(counts),
        "seconds": seconds,
        "flops": flops,
        "gflops_per_s": flops / seconds / 1e9 if seconds else None,
        "top": sorted(per_shape, key=lambda r: -r["seconds"])[:8],
    }


FEEDS = ("placed", "host", "resident")
"""How ``train_throughput`` feeds its steps: ``placed`` batches put on the devices once (the step alone);
``host`` and ``resident`` the path :func:`jaxbeam.train.fit` takes, an :class:`jaxbeam.train.ArraySource` with
symmetry augmentation (as BERT's pre-training), gathered, augmented and copied per step on the host, or
resident on the devices (``on_device=True``: indices and augmentation keys per step)."""


def train_throughput(
    preset: str,
    dtype: str = "float32",
    *,
    devices: Sequence[jax.Device] | None = None,
    steps_per_call: int = 1,
    feed: str = "placed",
    K: int = 6,
    N: int = 12,
    min_seconds: float = 2.0,
    execute: bool = True,
    matmuls: bool = True,
    seed: int = 0,
) -> dict:
    """Training throughput of the preset's BERT (supervised eq. 17, Adam): one jitted step (or a ``lax.scan``
    of ``steps_per_call``) on ``devices`` (default all), compiled ahead of time.

    Returns compile seconds, XLA's FLOPs and memory footprint per call (``execute=False`` stops there: an
    accelerator plan for shapes this machine cannot run), and, timed over at least ``min_seconds`` after a
    warm-up call, steps/s, samples/s and achieved GFLOP/s. ``feed`` (:data:`FEEDS`): ``placed`` times the
    step alone, ``host`` / ``resident`` the engine's whole loop (:meth:`jaxbeam.train.Engine.step`) on 16
    batches of data. Labels are RZF beams (the label does not change the cost). ``matmuls`` (one device
    only) adds the step's matmul bound (:func:`matmul_time`): its dots timed alone at their own shapes.
    """
    from jaxbeam import configs, train
    from jaxbeam.jobs.builders import bert_model, loss_for

    if steps_per_call < 1:
        raise ValueError(f"steps_per_call must be >= 1; got {steps_per_call}")
    if feed not in FEEDS:
        raise ValueError(f"feed must be one of {FEEDS}; got {feed!r}")
    cfg = configs.get_preset(preset, K=K, N=N, dtype=dtype, utility="sr", supervised=True)
    B = cfg.train.batch_size
    mesh = train.data_mesh(devices)
    B -= B % len(mesh.devices.flat)
    if B < 1:
        raise ValueError(f"the {preset!r} preset's batch ({cfg.train.batch_size}) is below {mesh.devices.size} devices")
    n = steps_per_call if feed == "placed" else 16  # samples: n batches

    H = jb.rayleigh(jax.random.key(seed), (n * B,), K, N)
    P = jnp.ones((n * B,), jnp.float32)
    arrays = {"H": np.asarray(H), "P": np.asarray(P), "W_label": np.asarray(jb.rzf(H, P, cfg.system.sigma2))}
    source = train.ArraySource(
        arrays, B, seed=seed, shuffle=feed != "placed", transform=None if feed == "placed" else train.symmetry_augment,
        on_device=feed == "resident",
    )  # fmt: skip
    engine = train.Engine(
        bert_model(cfg), loss_for(cfg), train.make_optimizer(cfg.train.learning_rate, 10_000), mesh=mesh, source=source
    )
    batches = list(source.epoch(0))
    state = engine.init_state(jax.random.PRNGKey(seed), batches[0])
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state["params"]))
    chunk = batches[:steps_per_call]
    if steps_per_call == 1:
        fn, placed = engine.train_step, engine.put_batch(chunk[0])
    else:
        fn, placed = engine.train_chunk, engine.put_chunk(chunk)
    t0 = time.perf_counter()
    compiled = fn.lower(state, placed).compile()
    compile_s = time.perf_counter() - t0
    # per step; XLA's cost analysis counts a loop body once, so a chunk's comes from one step's program
    if steps_per_call == 1:
        flops = compiled_flops(compiled)
    else:
        flops = compiled_flops(engine.train_step.lower(state, engine.put_batch(chunk[0])).compile())
    row = {
        "preset": preset,
        "dtype": dtype,
        "K": K,
        "N": N,
        "batch": B,
        "devices": engine.num_shards,
        "device_kind": mesh.devices.flat[0].device_kind,
        "steps_per_call": steps_per_call,
        "feed": feed,
        "params": n_params,
        "compile_s": compile_s,
        "flops_per_step": flops,
        "memory_bytes": _memory(compiled),
    }
    if not execute:
        return row
    if feed == "placed":

        def call(state):
            return compiled(state, placed, engine.resident)
    else:  # the engine's loop: the host gathers (or indexes) and places every batch, one call in flight
        epochs = iter(range(1, 1 << 30))
        stream = iter(())

        def call(state):
            nonlocal stream
            got = []
            while len(got) < steps_per_call:
                b = next(stream, None)
                if b is None:
                    stream = source.epoch(next(epochs))
                    continue
                got.append(b)
            return engine.step(state, got[0]) if steps_per_call == 1 else engine.steps(state, got)

    state, metrics = call(state)  # warm-up (the state is donated: keep the returned one)
    jax.block_until_ready(metrics)
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < min_seconds:
        state, metrics = call(state)
        if feed == "placed":
            jax.block_until_ready(metrics)
        calls += 1
    jax.block_until_ready(metrics)
    seconds = (time.perf_counter() - start) / (calls * steps_per_call)
    row.update(
        steps=calls * steps_per_call,
        seconds_per_step=seconds,
        steps_per_s=1 / seconds,
        samples_per_s=B / seconds,
        gflops_per_s=None if flops is None else flops / seconds / 1e9,
    )
    if matmuls and engine.num_shards == 1:
        args = state, engine.put_batch(batches[0]), engine.resident
        bound = matmul_time(engine.train_step.fn, *args, min_seconds=min(0.2, min_seconds / 10))
        row["matmuls"] = bound | {"fraction_of_bound": bound["seconds"] / seconds}
    return row


def format_train_rows(rows: Sequence[dict]) -> str:
    header = ["preset", "dtype", "devices", "batch", "steps/call", "feed", "params", "compile s", "GFLOP/step"]
    header += ["memory MiB", "steps/s", "samples/s", "GFLOP/s", "of peak", "matmul-bound steps/s", "of bound"]
    out = []
    for r in rows:
        mem = r["memory_bytes"].get("footprint")
        mm = r.get("matmuls")
        out.append(
            [
                r["preset"],
                r["dtype"],
                r["devices"],
                r["batch"],
                r["steps_per_call"],
                r.get("feed", "placed"),
                f"{r['params']:,}",
                f"{r['compile_s']:.1f}",
                "-" if r["flops_per_step"] is None else f"{r['flops_per_step'] / 1e9:.3g}",
                "-" if mem is None else f"{mem / 2**20:,.1f}",
                f"{r['steps_per_s']:.2f}" if "steps_per_s" in r else "-",
                f"{r['samples_per_s']:,.0f}" if "samples_per_s" in r else "-",
                "-" if r.get("gflops_per_s") is None else f"{r['gflops_per_s']:.1f}",
                "-" if r.get("fraction_of_matmul_peak") is None else f"{100 * r['fraction_of_matmul_peak']:.0f} %",
                "-" if not mm else f"{1 / mm['seconds']:.2f}",
                "-" if not mm else f"{100 * mm['fraction_of_bound']:.0f} %",
            ]
        )
    env = environment()
    head = (
        f"BERT training steps (eq. 17, Adam) on {env['device_kind']} x{env['device_count']} ({env['backend']}), "
        f"jax {env['jax']}; matmul-bound = the step's own dots timed alone (one device)\n"
    )
    return head + markdown_table(header, out)
