"""``jaxbeam linear`` (closed-form precoders) and ``jaxbeam label`` (label sets from the batched solvers)."""

from __future__ import annotations

import argparse
import time

from jaxbeam.cli.args import UserError, add_channel_args, channel_args, positive_float, positive_int


# ------------------------------------------------------------------------------------------------- linear
def _linear(args) -> int:
    import jax

    import jaxbeam as jb
    from jaxbeam.core.precoders import LINEAR, linear_baselines
    from jaxbeam.jobs.report import markdown_table

    t0 = time.perf_counter()
    key = jax.random.key(args.seed)
    rows = []
    for K, N in ((6, 12), (8, 16)):
        H = jb.rayleigh(jax.random.fold_in(key, 100 * K + N), (args.samples,), K, N)
        for P in args.P:
            res = linear_baselines(H, P, args.sigma2, args.Pc)
            for name in (n for n in LINEAR if n in res):
                u = res[name]
                rows.append((f"({K}, {N})", P, name.upper(), *(float(u[t].mean()) for t in jb.TASKS)))
    table = markdown_table(["(K, N)", "P [W]", "precoder", "SR", "MR", "EE"], rows)
    print(
        f"Mean utilities of the linear precoders over {args.samples} Rayleigh channels per setting "
        f"(sigma2 = {args.sigma2}, Pc = {args.Pc}; SR, MR in bit/s/Hz, EE in bit/s/Hz/W)\n"
    )
    print(table)
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    return 0


def _add_linear(sub) -> None:
    p = sub.add_parser(
        "linear",
        help="mean SR / MR / EE of the closed-form precoders (MRT, ZF, RZF, RZF_BAL), in seconds",
        description=(
            "Print the mean SR / MR / EE of the MRT, ZF and RZF precoders, and of RZF_BAL (RZF directions with "
            "max-min SINR-balancing powers), over Rayleigh channels at the paper's settings ((K, N) in "
            "{(6, 12), (8, 16)}, P in {1, 2, 3})."
        ),
        epilog="example: jaxbeam linear --samples 2000 --P 1 2 3",
    )
    p.add_argument("--samples", type=positive_int, default=2000, help="channels per setting (default 2000)")
    p.add_argument("--P", type=positive_float, nargs="+", default=[1.0, 2.0, 3.0], help="power budgets [W]")
    p.add_argument("--sigma2", type=positive_float, default=0.1, help="noise power [W] (default 0.1)")
    p.add_argument("--Pc", type=positive_float, default=0.5, help="circuit power [W] (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=_linear)


# -------------------------------------------------------------------------------------------------- label
def _label(args) -> int:
    from jaxbeam.data.generate import SOLVERS, generate_labels

    solver = args.solver
    if solver is not None and solver not in SOLVERS[args.utility]:
        raise UserError(f"--solver for --utility {args.utility} must be one of {', '.join(SOLVERS[args.utility])}")
    from pathlib import Path

    channel_params = channel_args(args)
    finished = (Path(args.out) / "meta.json").is_file()
    try:
        labels = generate_labels(
            args.out,
            args.utility,
            args.K,
            args.N,
            args.P,
            args.samples,
            args.seed,
            sigma2=args.sigma2,
            Pc=args.Pc,
            tol=args.tol,
            solver=solver,
            chunk_size=args.chunk,
            progress=not args.no_progress,
            channel=args.channel,
            channel_args=channel_params,
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    m = labels.meta
    means = ", ".join(f"P = {p} W: {u:.4f}" for p, u in m["mean_utility"].items())
    verb = "found the finished set of" if finished else "wrote"
    print(f"{verb} {len(labels)} {args.utility.upper()} labels ({m['solver']}, tol {m['tol']}) in {args.out}")
    print(f"mean utility: {means}")
    return 0


def _add_label(sub) -> None:
    p = sub.add_parser(
        "label",
        help="make a label data set with the batched solvers (chunked, resumable)",
        description=(
            "Solve SAMPLES channels per power level (i.i.d. Rayleigh, or another --channel source) with the label "
            "solver of the utility (SR: WMMSE, MR: exact max-min, EE: SCA; --solver wmmse-antenna or sca-antenna: "
            "under per-antenna budgets P / N, with -strict: run on to convergence, slower) and write "
            "OUT/{H,W,P,U,split}.npy + meta.json (loads with numpy.load or jaxbeam.data.format.load_labels; meta.json"
            " holds every file's sha256). Chunks are sharded over all local devices and saved with a checksum as they"
            " finish: run the same command again after an interruption (even a kill) to resume; a corrupted chunk is "
            "re-solved with a warning, and on a finished set the command does nothing. Other settings on the same OUT"
            " stop with an error naming what differs."
        ),
        epilog="example: jaxbeam label --utility sr --K 6 --N 12 --P 1 2 3 --samples 80000 --seed 0 --out data/sr_6_12",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--utility", choices=["sr", "mr", "ee"], required=True, help="system utility")
    p.add_argument("--K", type=positive_int, default=6, help="users")
    p.add_argument("--N", type=positive_int, default=12, help="transmit antennas")
    p.add_argument("--P", type=positive_float, nargs="+", default=[1.0, 2.0, 3.0], help="power budgets [W]")
    p.add_argument("--samples", type=positive_int, default=80000, help="samples per power level")
    p.add_argument("--seed", type=int, default=0, help="channel and split seed")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--sigma2", type=positive_float, default=0.1, help="noise power [W]")
    p.add_argument("--Pc", type=positive_float, default=0.5, help="circuit power [W] (EE)")
    p.add_argument("--tol", type=positive_float, default=1e-4, help="solver convergence tolerance")
    p.add_argument(
        "--solver",
        default=None,
        help="sr: wmmse|sca|wmmse-antenna|sca-antenna|wmmse-antenna-strict, mr: exact|sca|sca-antenna|"
        "sca-antenna-strict, ee: sca|sca-antenna|sca-antenna-strict (default: wmmse for sr, exact for mr, sca for ee)",
    )
    add_channel_args(p, "recorded with the set")
    p.add_argument("--chunk", type=positive_int, default=4096, help="samples per chunk (unit of resume)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_label)


SUBCOMMANDS = [_add_linear, _add_label]
