"""Jitted inference latency and throughput of the beamforming models (training-shell side).

Used by ``python -m benchmarks.inference_latency`` and ``jaxbeam bench``. Methodology (STYLE.md 8):
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
