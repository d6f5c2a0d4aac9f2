"""Optimizer steps per dispatch: ``python -m benchmarks.train_chunk [--preset cpu] [--chunks 1,4,16,64]``.

Times the training engine's steps on the preset's BERT (SR, supervised eq. 17, (6, 12), its batch size) with
``steps_per_call`` = each of ``--chunks`` (:attr:`jaxbeam.train.Engine.train_chunk`, a ``lax.scan`` over that
many stacked batches; 1 = :attr:`~jaxbeam.train.Engine.train_step`, one dispatch and one host-to-device copy
per step), through the same path ``jaxbeam.train.fit`` takes (host batches from an ``ArraySource``, placed per
call). Labels are RZF beams (the solver does not matter for speed). Prints steps/s and the ratio to one step
per call, measured in one run after a compiling warm-up; wall-clock on a possibly shared machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time

import jax
import numpy as np

import jaxbeam as jb
from jaxbeam import configs, train
from jaxbeam.data.format import LabelSet, split_ids
from jaxbeam.jobs.builders import bert_model
from jaxbeam.jobs.report import markdown_table
from jaxbeam.train import losses


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--chunks", default="1,4,16,64")
    ap.add_argument("--steps", type=int, default=512, help="timed steps per chunk size (default 512)")
    ap.add_argument("--out", default="train_chunk.json")
    args = ap.parse_args(argv)
    chunks = [int(c) for c in args.chunks.split(",")]
    cfg = configs.get_preset(args.preset, utility="sr", K=6, N=12)
    S = 4096
    H = np.asarray(jb.rayleigh(jax.random.key(0), (S,), 6, 12))
    P = np.ones(S, np.float32)
    W = np.asarray(jb.rzf(H, P, cfg.system.sigma2))
    U = np.asarray(jb.sum_rate(H, W, cfg.system.sigma2))
    ls = LabelSet(H=H, W=W, P=P, U=U, split_ids=split_ids(S, 0), meta={"solver": "rzf"})
    source = train.ArraySource(train.label_arrays(ls.split("train")), cfg.train.batch_size, seed=0)
    model = bert_model(cfg)
    loss_fn = losses.make_loss("sr", supervised=True, lambda1=cfg.train.lambda1, lambda2=cfg.train.lambda2)
    engine = train.Engine(model, loss_fn, train.make_optimizer(cfg.train.learning_rate, 10_000))
    batches = itertools.cycle(
        list(itertools.islice(itertools.chain.from_iterable(source.epoch(e) for e in range(9)), 256))
    )
    rows = []
    for c in chunks:
        state = engine.init_state(jax.random.PRNGKey(0), next(batches))
        n = max(c, (args.steps // c) * c)

        def run(state, n=n, c=c):
            for _ in range(n // c):
                chunk = [next(batches) for _ in range(c)]
                state, metrics = engine.step(state, chunk[0]) if c == 1 else engine.steps(state, chunk)
            jax.block_until_ready(metrics)
            return state

        state = run(state, n=2 * c)  # compile and warm up
        t0 = time.perf_counter()
        state = run(state)
        seconds = time.perf_counter() - t0
        rows.append({"steps_per_call": c, "steps": n, "seconds": seconds, "steps_per_s": n / seconds})
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["steps_per_s"]
    table = [
        [r["steps_per_call"], r["steps"], f"{r['steps_per_s']:.1f}", f"{r['steps_per_s'] / base:.2f}"] for r in rows
    ]
    print(
        f"\n{args.preset} BERT (F = {cfg.model.features}, {cfg.model.num_layers} blocks, "
        f"batch {cfg.train.batch_size}) on "
        f"{jax.devices()[0].device_kind} x{jax.device_count()} ({platform.processor() or platform.machine()}):"
    )
    print(markdown_table(["steps per call", "timed steps", "steps/s", "vs 1 per call"], table))
    with open(args.out, "w") as f:
        json.dump({"preset": args.preset, "device": jax.devices()[0].device_kind, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
