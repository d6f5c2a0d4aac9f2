"""Channel generation rate per source: ``python -m benchmarks.channel_rate [--smoke] [--sources NAME ...]``.

Samples/s of every label source (:data:`jaxbeam.data.generate.SOURCES`) at (K, N) (default (6, 12) and
(8, 16)) for one batch size: the functional core's ``rayleigh``, ``correlated`` and ``pathloss`` (jitted, on
the default JAX device, compile excluded) and Sionna's TR 38.901 ``sionna-uma``, ``-umi``, ``-rma``, ``-cdl``
(PyTorch on the CPU, the ``sionna`` extra; skipped with a note without it), each drawn through
:func:`jaxbeam.data.generate.draw_source`, the path the label generator takes (Sionna: its topology drop or
CDL links, the 38.901 large- and small-scale parameters, the path sum and the conversion to a JAX array). Median of
``--repeats`` timed draws after a warm-up, with fresh keys per draw. Writes a JSON file.

Timings are wall-clock on a possibly shared machine; compare the ratios measured within one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxbeam.data.generate import SOURCES, draw_source, source_params
from jaxbeam.jobs.report import markdown_table


def _draw(name: str, K: int, N: int, batch: int):
    params = source_params(name, None)
    draw = lambda key: draw_source(name, key, batch, K, N, jnp.complex64, params)  # noqa: E731
    return draw if name.startswith("sionna") else jax.jit(draw)  # Sionna runs outside any jit


def rate(name: str, K: int, N: int, batch: int, repeats: int) -> float:
    """Samples/s of ``name`` at (K, N): median of ``repeats`` timed draws of ``batch`` after one warm-up."""
    draw = _draw(name, K, N, batch)
    jax.block_until_ready(draw(jax.random.key(0)))  # compile / Sionna's first-call set-up
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        H = jax.block_until_ready(draw(jax.random.key(i + 1)))
        times.append(time.perf_counter() - t0)
    if H.shape != (batch, K, N) or not bool(jnp.all(jnp.isfinite(H))):
        raise RuntimeError(f"{name} drew {H.shape} with non-finite entries")
    return batch / float(np.median(times))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["6,12", "8,16"], help="K,N pairs")
    ap.add_argument("--batch", type=int, default=4096, help="channels per draw (JAX sources)")
    ap.add_argument("--sionna-batch", type=int, default=256, help="channels per draw (Sionna sources)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sources", nargs="+", choices=SOURCES, help="these sources only (default: all)")
    ap.add_argument("--smoke", action="store_true", help="(2, 4), small batches, one repeat")
    ap.add_argument("--out", default="runs/bench/channel_rate.json")
    args = ap.parse_args(argv)
    if args.smoke:
        args.configs, args.batch, args.sionna_batch, args.repeats = ["2,4"], 64, 8, 1
    try:
        import sionna.phy  # noqa: F401

        sources, missing = list(SOURCES), None
    except ImportError as e:
        sources, missing = [s for s in SOURCES if not s.startswith("sionna")], str(e)
    if args.sources:
        sources = [s for s in sources if s in args.sources]
    rows, records = [], []
    for pair in args.configs:
        K, N = (int(v) for v in pair.split(","))
        for name in sources:
            batch = args.sionna_batch if name.startswith("sionna") else args.batch
            r = rate(name, K, N, batch, args.repeats)
            records.append({"source": name, "K": K, "N": N, "batch": batch, "samples_per_s": r})
            rows.append([f"({K}, {N})", name, batch, f"{r:,.0f}"])
            print(" | ".join(str(c) for c in rows[-1]), flush=True)
    print()
    print(markdown_table(["(K, N)", "source", "batch", "samples/s"], rows))
    if missing:
        print(f"\nSionna sources skipped: pip install 'jaxbeam[sionna]' ({missing})")
    meta = {"jax": jax.__version__, "backend": jax.default_backend(), "machine": platform.processor()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "sionna_missing": missing, "results": records}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    main()
