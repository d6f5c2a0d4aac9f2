"""Does an MT-SAO layer learn? ``python -m benchmarks.sao_learning [--steps 300]``.

Trains one SAO-lift layer (``cpu`` preset sizes, window 1) on one fixed system (default K = N = 16, 20 dB,
the regime where RZF is weak) for ``--steps`` Adam steps, for every combination of ``--train-steps``
(Q_t, the gradient steps inside training; 0 = the layer alone) and ``--lr``, and prints the mean sum rate
on 256 held-out channels of: the untrained model (= LMMSE + Q backtracking steps), the trained model, and
WMMSE (tol 1e-5), each with Q = Q_t at inference; plus the relative size of the trained layer's update
``||Delta W|| / ||W^(0)||``. If the trained model is no better than the untrained one, the layer learned
nothing in that budget. Prints a table and writes JSON (``--out``). ``--gradient-input`` gives the layer
the sum-rate gradient as an input (:class:`jaxbeam.models.SAO`'s ``gradient_input``; not in 002).

``--probe`` instead separates capacity from optimisation: the same layer (Q = 0) trained with plain Adam
on ``--train-channels`` fixed channels, once *supervised* (mean squared distance to WMMSE's beams, each
user's beam rotated to the phase closest to LMMSE's, which leaves every rate unchanged) and once
*unsupervised* (minus the sum rate, eq. 7); it prints the held-out sum rate of both and the fraction of the
distance from LMMSE to WMMSE that the supervised layer closes. A layer that cannot fit the supervised
target lacks capacity or input; one that fits it but does not learn unsupervised is an optimisation problem.

Wall-clock on a possibly shared machine; the sum rates do not depend on it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxbeam as jb
from jaxbeam.configs import get_sao_preset
from jaxbeam.jobs.report import markdown_table
from jaxbeam.jobs.sao import sao_model, train_sao


def layer_update_ratio(cfg, params, H):
    """``||Delta W_1|| / ||W^(0)||`` of the first layer on ``H`` (zero for the untrained layer)."""
    model = sao_model(cfg, steps=0)
    W0 = jb.rzf(H, cfg.P, cfg.sigma2)
    W1 = jax.jit(lambda p: model.apply({"params": p}, H, cfg.P))(params)  # one layer, no steps: sphere(W0 + dW)
    return float(jnp_norm(W1 - W0) / jnp_norm(W0))


def jnp_norm(X):
    return np.sqrt(np.sum(np.abs(np.asarray(X)) ** 2))


def _align_phases(W, W0):
    """Each user's beam of ``W`` rotated by the phase that brings it closest to ``W0``'s (rates unchanged)."""
    c = jnp.sum(jnp.conj(W) * W0, axis=-1, keepdims=True)
    return W * jnp.exp(1j * jnp.angle(c)).astype(W.dtype)


def capacity_probe(args):
    """Supervised (to WMMSE) against unsupervised (sum rate) training of one layer, Q = 0, same data."""
    cfg = get_sao_preset(
        "cpu",
        max_users=max(args.K, 4),
        max_antennas=max(args.N, 4),
        num_layers=1,
        window=1,
        gradient_input=args.gradient_input,
    )
    model = sao_model(cfg, steps=0)
    H = jb.rayleigh(jax.random.key(7), (args.train_channels + args.samples,), args.K, args.N)
    t0 = time.perf_counter()
    W0 = jb.rzf(H, cfg.P, cfg.sigma2)
    target = _align_phases(jb.wmmse(H, cfg.P, cfg.sigma2, tol=1e-5), W0)
    print(f"WMMSE targets for {H.shape[0]} channels: {time.perf_counter() - t0:.0f} s", flush=True)
    Ht, Tt, Hv, Tv = (
        H[: args.train_channels],
        target[: args.train_channels],
        H[args.train_channels :],
        target[args.train_channels :],
    )
    apply = jax.jit(lambda p, H: model.apply({"params": p}, H, cfg.P))
    sr = lambda W: float(np.mean(jb.sum_rate(Hv, W, cfg.sigma2)))  # noqa: E731
    dist = lambda W: float(np.mean(np.sum(np.abs(np.asarray(W - Tv)) ** 2, axis=(-2, -1))))  # noqa: E731
    rows = []
    for supervised in (True, False):
        for lr in [float(v) for v in args.lr.split(",")]:
            params = model.init(jax.random.PRNGKey(0), Ht[:2], cfg.P)["params"]
            tx = optax.adam(lr)
            opt = tx.init(params)

            def loss(p, H, T, supervised=supervised):
                W = model.apply({"params": p}, H, cfg.P)
                if supervised:
                    return jnp.mean(jnp.sum(jnp.abs(W - T) ** 2, axis=(-2, -1)))
                return -jnp.mean(jb.sum_rate(H, W, cfg.sigma2))

            @jax.jit
            def step(p, o, H, T, loss=loss, tx=tx):
                value, g = jax.value_and_grad(loss)(p, H, T)
                u, o = tx.update(g, o, p)
                return optax.apply_updates(p, u), o, value

            rng = np.random.default_rng(0)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                idx = rng.integers(0, args.train_channels, 64)
                params, opt, _ = step(params, opt, Ht[idx], Tt[idx])
            W = apply(params, Hv)
            rows.append(
                {
                    "loss": "supervised (WMMSE beams)" if supervised else "unsupervised (sum rate)",
                    "lr": lr,
                    "steps": args.steps,
                    "rzf": sr(W0[args.train_channels :]),
                    "trained": sr(W),
                    "wmmse": sr(Tv),
                    "gap_closed": 1 - dist(W) / dist(W0[args.train_channels :]),
                    "seconds": time.perf_counter() - t0,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    table = [
        [r["loss"], f"{r['lr']:g}", r["steps"], f"{100 * r['rzf'] / r['wmmse']:.2f}"]
        + [f"{100 * r['trained'] / r['wmmse']:.2f}", f"{100 * r['gap_closed']:.1f}", f"{r['seconds']:.0f}"]
        for r in rows
    ]
    head = ["loss", "lr", "Adam steps", "RZF %", "trained %", "distance to WMMSE closed %", "s"]
    print(
        f"\nOne SAO-lift layer (Q = 0) at ({args.K}, {args.N}), 20 dB, {args.train_channels} training channels, "
        f"{args.samples} held out; % of WMMSE:"
    )
    print(markdown_table(head, table))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--K", type=int, default=16)
    ap.add_argument("--N", type=int, default=16)
    ap.add_argument("--steps", type=int, default=300, help="Adam steps per run (default 300)")
    ap.add_argument("--train-steps", default="0,3", help="Q_t values, comma-separated (default 0,3)")
    ap.add_argument("--lr", default="1e-3,1e-2", help="learning rates, comma-separated (default 1e-3,1e-2)")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--out", default="sao_learning.json")
    ap.add_argument("--probe", action="store_true", help="supervised vs unsupervised capacity probe (see above)")
    ap.add_argument("--train-channels", type=int, default=1024, help="fixed training channels of --probe")
    ap.add_argument(
        "--step-size", type=float, default=0.0, help="fixed step eta_w of the Q_t steps (default 0: backtracking)"
    )
    ap.add_argument(
        "--normalize-step", action="store_true", help="--step-size is relative: eta sqrt(P) g / ||g|| (not in 002)"
    )
    ap.add_argument(
        "--gradient-input", action="store_true", help="the layer also sees the sum-rate gradient (not in 002)"
    )
    args = ap.parse_args(argv)
    if args.probe:
        rows = capacity_probe(args)
        with open(args.out, "w") as f:
            json.dump({"K": args.K, "N": args.N, "probe": rows}, f, indent=1)
        return
    rows = []
    H = jb.rayleigh(jax.random.key(99), (args.samples,), args.K, args.N)
    grid = itertools.product([int(v) for v in args.train_steps.split(",")], [float(v) for v in args.lr.split(",")])
    for q, lr in grid:
        spe = min(100, args.steps)
        cfg = get_sao_preset(
            "cpu",
            max_users=max(args.K, 4),
            max_antennas=max(args.N, 4),
            K_schedule=(args.K,),
            N_schedule=(args.N,),
            num_layers=1,
            window=1,
            steps_per_epoch=spe,
            stage_epochs=max(1, args.steps // spe),
            replay=0,
            train_steps=q,
            infer_steps=q,
            learning_rate=lr,
            final_learning_rate=lr,
            val_per_config=64,
            log_every=50,
            gradient_input=args.gradient_input,
            step_size=args.step_size,
            normalize_step=args.normalize_step,
        )
        model = sao_model(cfg)
        apply = jax.jit(lambda p, H, model=model, P=cfg.P: model.apply({"params": p}, H, P))
        sr = lambda W, s2=cfg.sigma2: float(np.mean(jb.sum_rate(H, W, s2)))  # noqa: E731
        init = model.init(jax.random.PRNGKey(cfg.seed), H[:2], cfg.P)["params"]
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            run = train_sao(cfg, d, progress=False)
        seconds = time.perf_counter() - t0
        wmmse = sr(jb.wmmse(H, cfg.P, cfg.sigma2, tol=1e-5))
        rec = {
            "Q_t": q,
            "lr": lr,
            "steps": cfg.epochs_per_window * spe,
            "untrained": sr(apply(init, H)),
            "trained": sr(apply(run.params, H)),
            "rzf": sr(jb.rzf(H, cfg.P, cfg.sigma2)),
            "wmmse": wmmse,
            "update_ratio": layer_update_ratio(cfg, run.params, H),
            "seconds": seconds,
        }
        rows.append(rec)
        print(json.dumps(rec), flush=True)
    table = [
        [r["Q_t"], f"{r['lr']:g}", r["steps"]]
        + [f"{100 * r[k] / r['wmmse']:.2f}" for k in ("rzf", "untrained", "trained")]
        + [f"{r['update_ratio']:.4f}", f"{r['seconds']:.0f}"]
        for r in rows
    ]
    head = ["Q_t", "lr", "Adam steps", "RZF %", "untrained %", "trained %", "||dW||/||W0||", "s"]
    print(
        f"\nOne SAO-lift layer{' with gradient input' if args.gradient_input else ''}, "
        f"{'step ' + format(args.step_size, 'g') if args.step_size else 'backtracking steps'}"
        f"{' (normalised gradient)' if args.normalize_step else ''}, at (K, N) = "
        f"({args.K}, {args.N}), 20 dB, % of WMMSE (tol 1e-5), {args.samples} channels:"
    )
    print(markdown_table(head, table))
    with open(args.out, "w") as f:
        json.dump({"K": args.K, "N": args.N, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
