"""Steps per dispatch and where the data lives: ``python -m benchmarks.train_chunk [--preset cpu]
[--chunks 1,8] [--feeds host,resident] [--rounds 5]``.

Times the training engine's loop on the preset's BERT (SR, supervised eq. 17, (6, 12), its batch size,
symmetry augmentation as in its pre-training) through the path ``jaxbeam.train.fit`` takes
(:meth:`jaxbeam.train.Engine.step` / :meth:`~jaxbeam.train.Engine.steps`, one call in flight), for every
``steps_per_call`` of ``--chunks`` (a ``lax.scan`` over that many batches) and every feed of ``--feeds``:
``host`` (an ``ArraySource`` gathering, augmenting and copying every batch on the host) or ``resident``
(``ArraySource(on_device=True)``: the data set placed on the device once, indices and augmentation keys per
step). Every set-up is compiled and warmed up first, then timed in ``--rounds`` interleaved rounds (each
set-up once per round), so a busy machine slows all of them alike; prints the median steps/s and the ratio
to the first set-up (host feed, one step per call). Labels are RZF beams (the solver does not matter).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import numpy as np

import jaxbeam as jb
from jaxbeam import configs, train
from jaxbeam.jobs.builders import bert_model
from jaxbeam.jobs.report import markdown_table
from jaxbeam.train import losses


def _setup(cfg, arrays, feed: str, chunk: int):
    source = train.ArraySource(
        arrays, cfg.train.batch_size, seed=0, transform=train.symmetry_augment, on_device=feed == "resident"
    )
    loss_fn = losses.make_loss("sr", supervised=True, lambda1=cfg.train.lambda1, lambda2=cfg.train.lambda2)
    engine = train.Engine(
        bert_model(cfg), loss_fn, train.make_optimizer(cfg.train.learning_rate, 10_000), source=source
    )
    stream = (b for e in range(1 << 30) for b in source.epoch(e))
    state = engine.init_state(jax.random.PRNGKey(0), next(source.epoch(0)))

    def run(state, steps):
        metrics = None
        for _ in range(steps // chunk):
            got = [next(stream) for _ in range(chunk)]
            state, metrics = engine.step(state, got[0]) if chunk == 1 else engine.steps(state, got)
        jax.block_until_ready(metrics)
        return state

    return run, state


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--chunks", default="1,8")
    ap.add_argument("--feeds", default="host,resident")
    ap.add_argument("--steps", type=int, default=128, help="timed steps per set-up and round (default 128)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="train_chunk.json")
    args = ap.parse_args(argv)
    chunks = [int(c) for c in args.chunks.split(",")]
    feeds = args.feeds.split(",")
    if any(f not in ("host", "resident") for f in feeds) or min(chunks) < 1 or args.steps < max(chunks):
        ap.error("--feeds takes host,resident; --chunks positive integers <= --steps")
    cfg = configs.get_preset(args.preset, utility="sr", K=6, N=12)
    S = 4096
    H = jb.rayleigh(jax.random.key(0), (S,), 6, 12)
    P = np.ones(S, np.float32)
    arrays = {"H": np.asarray(H), "P": P, "W_label": np.asarray(jb.rzf(H, P, cfg.system.sigma2))}
    setups, states = {}, {}
    for feed in feeds:
        for c in chunks:
            run, state = _setup(cfg, arrays, feed, c)
            states[feed, c] = run(state, 2 * c)  # compile and warm up
            setups[feed, c] = run
            print(f"compiled {feed}, {c} step(s) per call", flush=True)
    rates = {k: [] for k in setups}
    for r in range(args.rounds):
        for k, run in setups.items():
            n = (args.steps // k[1]) * k[1]
            t0 = time.perf_counter()
            states[k] = run(states[k], n)
            rates[k].append(n / (time.perf_counter() - t0))
        print(f"round {r + 1}: " + ", ".join(f"{f}/{c} {v[-1]:.1f}" for (f, c), v in rates.items()), flush=True)
    rows = [
        {"feed": f, "steps_per_call": c, "steps_per_s": float(np.median(v)), "rounds": v} for (f, c), v in rates.items()
    ]
    base = rows[0]["steps_per_s"]
    table = [
        [r["feed"], r["steps_per_call"], f"{r['steps_per_s']:.1f}", f"{r['steps_per_s'] / base:.2f}"] for r in rows
    ]
    print(
        f"\n{args.preset} BERT (F = {cfg.model.features}, {cfg.model.num_layers} blocks, batch {cfg.train.batch_size}, "
        f"augmented) on {jax.devices()[0].device_kind} x{jax.device_count()} "
        f"({platform.processor() or platform.machine()}), median of {args.rounds} interleaved rounds:"
    )
    print(markdown_table(["feed", "steps per call", "steps/s", f"vs {rows[0]['feed']}, 1 per call"], table))
    with open(args.out, "w") as f:
        json.dump({"preset": args.preset, "device": jax.devices()[0].device_kind, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
