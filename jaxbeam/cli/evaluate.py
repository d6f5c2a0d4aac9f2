"""``jaxbeam evaluate`` (a trained run against the references) and ``jaxbeam bench`` (inference latency)."""

from __future__ import annotations

import json
from pathlib import Path

from jaxbeam.cli.args import UserError, add_channel_args, channel_args, nonnegative_int, positive_int, run_loader


# --------------------------------------------------------------------------------------------- evaluate
def _evaluate(args) -> int:
    from jaxbeam.core.utility import TASKS
    from jaxbeam.data.format import load_labels
    from jaxbeam.jobs.builders import bert_model, ubert_model
    from jaxbeam.jobs.evaluate import REFERENCES, performance_rows
    from jaxbeam.jobs.report import markdown_table

    if _identity_has(args.checkpoint, "sao_config"):
        return _evaluate_sao(args)
    if _identity_has(args.checkpoint, "unfolded_config"):
        return _evaluate_unfolded(args)
    if args.infer_steps is not None:
        raise UserError("--infer-steps applies to SAO runs (paper 002) only; this is a BERT or UBERT run")
    if args.channel is not None or args.channel_arg:
        raise UserError(
            "--channel / --channel-arg apply to SAO runs only; a BERT or UBERT run is evaluated on label sets, "
            "which record their channel source (jaxbeam label --channel ...)"
        )
    if not args.labels:
        raise UserError("--labels is required (label data set directories) for a BERT or UBERT run")
    cfg, ubert, params_for = run_loader(args.checkpoint)  # UBERT: any K and N, one model per task
    name = "ubert" if ubert else "bert"
    rows = []
    for path in args.labels:
        try:
            labels = load_labels(path)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(str(e)) from None
        if not ubert and labels.N != cfg.system.N:
            raise UserError(f"{path} has N = {labels.N} antennas; the model was built for N = {cfg.system.N}")
        utility = labels.meta.get("utility", cfg.train.utility)
        part = labels if args.split == "all" else labels.split(args.split)
        rows += performance_rows(
            utility,
            part,
            cfg.system.sigma2,
            cfg.system.Pc,
            model=ubert_model(cfg) if ubert else bert_model(cfg),
            params=params_for(TASKS.index(utility) if ubert else None),
            csi_error_db=args.csi_error_db,
            task=TASKS.index(utility) if ubert else None,
            model_name=name,
        )
    methods = (name, *REFERENCES)
    header = ["utility", "K", "N", "P [W]", "samples", "label U", *(m.upper() for m in methods)]
    body = [
        [r["utility"].upper(), r["K"], r["N"], f"{r['P']:g}", r["samples"], f"{r['label']:.3f}"]
        + [f"{r[m]:.2f}" if m in r else "-" for m in methods]
        for r in rows
    ]
    csi = "" if args.csi_error_db is None else f", CSI error {args.csi_error_db} dB"
    print(f"Performance (eq. 31, % of the label solver){csi}:\n")
    print(markdown_table(header, body))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


def _identity_has(checkpoint: str, key: str) -> bool:
    """Whether ``checkpoint`` holds a run whose identity has ``key`` (``"sao_config"``: an SAO run;
    ``"unfolded_config"``: an unfolded-WMMSE run)."""
    f = Path(checkpoint) / "config.json"
    try:
        return f.is_file() and key in json.loads(f.read_text()).get("identity", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def _evaluate_sao(args) -> int:
    """An SAO run: sum rate on fresh channels (``--channel``) at every (K, N) of its schedule grid vs RZF, ZF,
    WMMSE."""
    from jaxbeam.jobs.sao import evaluate_grid, grid_table, load_sao

    if args.labels or args.csi_error_db is not None:
        raise UserError("an SAO run is evaluated on fresh channels at its (K, N) grid; drop --labels/--csi-error-db")
    try:
        cfg, params = load_sao(args.checkpoint)
    except ValueError as e:
        raise UserError(str(e)) from None
    source, channel = channel_args(args), args.channel or cfg.channel  # default: the run's training channels
    try:
        rows = evaluate_grid(cfg, params, cfg.stages, samples=args.samples, seed=args.seed, steps=args.infer_steps,
                             channel=channel, channel_args=source)  # fmt: skip
    except ValueError as e:  # an unknown channel parameter
        raise UserError(f"--channel-arg: {e}") from None
    q = cfg.infer_steps if args.infer_steps is None else args.infer_steps
    where = channel + "".join(f", {k}={v:g}" for k, v in source.items())
    print(f"Sum rate at {cfg.snr_db:g} dB, Q_i = {q} gradient steps per layer, {args.samples} {where} channels per "
          "(K, N), % of WMMSE (tol 1e-5):\n")  # fmt: skip
    print(grid_table(rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


def _matched(r: dict) -> str:
    k = r["matched_k"]
    return f"WMMSE-{k} ({r[f'wmmse_{k}_pct']:.2f})"


def _evaluate_unfolded(args) -> int:
    """An unfolded-WMMSE run: sum rate on fresh Rayleigh channels at each of its systems beside RZF, WMMSE at the
    same iterations untrained, WMMSE's ladder and converged WMMSE."""
    from jaxbeam.jobs.report import markdown_table
    from jaxbeam.jobs.unfolded import evaluate_systems, load_unfolded

    extra = [f for f, v in (("--labels", args.labels), ("--csi-error-db", args.csi_error_db),
                            ("--infer-steps", args.infer_steps), ("--channel", args.channel)) if v]  # fmt: skip
    if extra or args.channel_arg:
        raise UserError(f"an unfolded-WMMSE run is evaluated on fresh Rayleigh channels at its systems; drop "
                        f"{', '.join(extra) or '--channel-arg'}")  # fmt: skip
    try:
        cfg, params = load_unfolded(args.checkpoint)
    except ValueError as e:
        raise UserError(str(e)) from None
    rows = evaluate_systems(cfg, params, samples=args.samples, seed=args.seed)
    T = cfg.iterations
    body = [
        [f"({r['K']}, {r['N']})", f"{r['wmmse']:.2f}", f"{r['unfolded_pct']:.2f} +- {r['unfolded_ci95']:.2f}",
         f"{r[f'wmmse_{T}_pct']:.2f}", f"{r['rzf_pct']:.2f}",
         "none <= 50" if r["matched_k"] is None else _matched(r)]
        for r in rows
    ]  # fmt: skip
    header = ["(K, N)", "WMMSE SR", f"unfolded-{T} %", f"WMMSE-{T} %", "RZF %", "cheapest WMMSE-k >= it"]
    print(f"Sum rate at {cfg.snr_db:g} dB, {args.samples} fresh Rayleigh channels per (K, N), % of WMMSE (tol 1e-5):\n")
    print(markdown_table(header, body))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


def add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="eq. 31 performance of a trained model and MRT/ZF/RZF/WMMSE on label sets",
        description=(
            "Evaluate the best weights of CHECKPOINT on one or more label data sets: performance (eq. 31) per "
            "utility, P and K against the label solver, beside MRT, ZF, RZF and WMMSE. For an SAO run (paper 002) "
            "no labels: sum rate on fresh channels at every (K, N) of its grid beside RZF, ZF and WMMSE."
        ),
        epilog="example: jaxbeam evaluate runs/sr/model --labels data/sr_6_12 data/sr_7_12 --csi-error-db -20",
    )
    p.add_argument("checkpoint", help="run directory of a training (holds config.json and checkpoints/)")
    p.add_argument("--labels", nargs="+", help="label data set directories (BERT, UBERT runs)")
    p.add_argument("--split", choices=["test", "val", "train", "all"], default="test", help="part (default test)")
    p.add_argument("--csi-error-db", type=float, help="evaluate with CSI error ||e||^2 = mu ||h||^2, mu in dB")
    p.add_argument("--samples", type=positive_int, default=256, help="SAO / unfolded runs: channels per (K, N)")
    p.add_argument("--seed", type=int, default=12345, help="SAO / unfolded runs: seed of the test channels")
    p.add_argument(
        "--infer-steps",
        type=nonnegative_int,
        help="SAO runs: gradient steps per layer Q_i at inference (default: the run's infer_steps)",
    )
    add_channel_args(p, "SAO runs: the test channels (default: the run's training channels)", default=None)
    p.add_argument("--out", help="write the rows as JSON here")
    p.set_defaults(func=_evaluate)


# ------------------------------------------------------------------------------------------------ bench
def _bench(args) -> int:
    from jaxbeam.jobs.bench import format_rows, run_inference_benchmark, write_json

    if args.train:
        return _bench_train(args)
    if args.smoke:
        args.presets, args.batches, args.dtypes = ["cpu"], [1, 8], ["float32"]
    result = run_inference_benchmark(
        args.presets,
        batches=args.batches,
        dtypes=args.dtypes,
        min_seconds=0.2 if args.smoke else 1.0,
        progress=lambda s: print(f"  measuring {s} ...", flush=True),
    )
    print(format_rows(result))
    print(f"\nwrote {write_json(args.out, result)}")
    return 0


def _bench_train(args) -> int:
    import jax

    from jaxbeam.jobs.bench import environment, format_train_rows, matmul_peak, train_throughput, write_json

    presets = ["smoke"] if args.smoke else args.presets
    counts = sorted({1, jax.device_count()})
    rows = []
    for preset in presets:
        for dtype in args.dtypes:
            for n in counts:
                for c in args.steps_per_call:
                    for feed in args.feeds:
                        print(f"  measuring {preset} {dtype}, {n} device(s), {c} step(s)/call, {feed} ...", flush=True)
                        rows.append(
                            train_throughput(
                                preset,
                                dtype,
                                devices=jax.devices()[:n],
                                steps_per_call=c,
                                feed=feed,
                                min_seconds=0.2 if args.smoke else 2.0,
                                execute=not args.compile_only,
                            )
                        )
    peak = None if args.compile_only else matmul_peak()
    for r in rows:
        r["fraction_of_matmul_peak"] = None if r.get("gflops_per_s") is None else r["gflops_per_s"] * 1e9 / peak
    print(format_train_rows(rows))
    if peak is not None:
        print(f"large-matmul rate {peak / 1e9:.1f} GFLOP/s (2048 x 2048 float32, this device)")
    out = args.out if args.out != DEFAULT_BENCH_OUT else "results/train_throughput.json"
    gflops = None if peak is None else peak / 1e9
    payload = {"environment": environment(), "matmul_peak_gflops_per_s": gflops, "rows": rows}
    print(f"\nwrote {write_json(out, payload)}")
    return 0


DEFAULT_BENCH_OUT = "results/inference_latency.json"


def add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="jitted BERT inference latency / throughput (--train: training steps)",
        description="Median and p90 latency, compile time, FLOPs and FLOP/s of the jitted BERT forward pass; "
        "with --train, the training step's compile time, XLA FLOPs and memory footprint, steps/s, samples/s "
        "and achieved FLOP/s on one device and on all devices.",
        epilog="examples: jaxbeam bench --presets cpu --batches 1 32; "
        "jaxbeam bench --train --presets cpu paper --steps-per-call 1 8; jaxbeam bench --train --compile-only; "
        "jaxbeam bench --train --presets cpu --feeds host resident",
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds")
    p.add_argument("--train", action="store_true", help="training-step throughput instead of inference latency")
    p.add_argument(
        "--steps-per-call", nargs="+", type=positive_int, default=[1], help="--train: optimizer steps per dispatch"
    )
    p.add_argument(
        "--compile-only", action="store_true", help="--train: compile and report FLOPs and memory, run nothing"
    )
    p.add_argument(
        "--feeds",
        nargs="+",
        default=["placed"],
        choices=["placed", "host", "resident"],
        help="--train: batches placed once (the step alone; default), or the training loop with an augmented "
        "data set gathered on the host or resident on the devices",
    )
    p.add_argument("--presets", nargs="+", default=["cpu", "paper"], choices=["cpu", "paper"])
    p.add_argument("--batches", nargs="+", type=positive_int, default=[1, 32, 1024])
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    p.add_argument("--out", default=DEFAULT_BENCH_OUT, help="JSON output path (--train: results/train_throughput.json)")
    p.set_defaults(func=_bench)


SUBCOMMANDS = [add_evaluate, add_bench]
