"""``jaxbeam quickstart``, ``jaxbeam pretrain`` and ``jaxbeam finetune``."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from jaxbeam.cli.args import (
    EXAMPLE_SET,
    UserError,
    add_config_args,
    config_overrides,
    direct_overrides,
    load_run,
    make_config,
    make_sao_config,
    positive_float,
    positive_int,
)


# ------------------------------------------------------------------------------------------- quickstart
def _quickstart(args) -> int:
    from jaxbeam.jobs import quickstart

    if args.model in SAO_MODELS:
        return _quickstart_sao(args)
    overrides = config_overrides(args.preset, args.set)
    fixed = sorted({"P", "samples_per_power", "utility"} & set(overrides))
    if fixed:
        raise UserError(f"--set cannot change {', '.join(fixed)} in quickstart: it fixes P and the utilities")
    make_config(args.preset, args.set)  # validates the preset name and the values
    opts = quickstart.QuickstartOptions(
        preset=args.preset,
        workdir=Path(args.workdir),
        samples_per_power=args.samples,
        steps_per_model=getattr(args, "steps", None),
        minutes_per_model=getattr(args, "minutes", None),
        kstar_samples_per_power=args.kstar_samples,
        seed=args.seed,
        model=args.model,
        overrides=overrides,
    )
    if opts.steps_per_model is not None and opts.minutes_per_model is not None:
        raise UserError("give --steps or --minutes, not both")
    result = quickstart.run(opts)
    print("\n" + (Path(args.workdir) / "quickstart.md").read_text())
    print(f"total {result['seconds'] / 60:.1f} min on {result['device']}; table, JSON and PNG in {args.workdir}/")
    return 0


def _quickstart_sao(args) -> int:
    from jaxbeam.jobs.sao import quickstart_sao

    for flag in ("steps", "minutes"):
        if hasattr(args, flag):
            raise UserError(f"--{flag} does not apply to --model {args.model}: its budget is the preset's")
    workdir = Path(args.workdir if args.workdir != "runs/quickstart" else f"runs/quickstart_{args.model}")
    from jaxbeam.configs import get_sao_preset

    lift = args.model == "sao_lift"
    cfg = make_sao_config(args.preset, args.set, lift=lift)  # validates the preset name and --set items
    base = dataclasses.asdict(get_sao_preset(args.preset, lift=lift))
    overrides = {k: v for k, v in dataclasses.asdict(cfg).items() if v != base[k] and k != "seed"}
    result = quickstart_sao(args.preset, workdir, lift=lift, samples=args.kstar_samples, seed=args.seed, **overrides)
    print("\n" + (workdir / "sao_grid.md").read_text())
    print(f"total {result['seconds'] / 60:.1f} min on {result['device']}; table, JSON and PNG in {workdir}/")
    return 0


def add_quickstart(sub) -> None:
    p = sub.add_parser(
        "quickstart",
        help="the main job: labels -> BERT for SR, MR, EE -> table vs MRT/ZF/RZF/WMMSE",
        description=(
            "Make (or reuse) labels at (K, N) = (6, 12), P in {1, 2, 3} W (label solvers: WMMSE for SR, exact "
            "max-min for MR, SCA for EE); pre-train one BERT per utility (SR, MR, EE) on the preset for a fixed "
            "number of steps (16,000 on cpu, ~5 min each on a 2-core CPU: the same numbers on any machine); "
            "print eq. 31 performance of BERT next to MRT, ZF, RZF, RZF_BAL and WMMSE against the label solver "
            "per P and at K* in {5, 7}. Writes quickstart.md/.json/.png into WORKDIR. Everything is cached: a "
            "second run only re-evaluates."
        ),
        epilog="example: jaxbeam quickstart --steps 16000 --workdir runs/quickstart",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--preset", default="cpu", help="model/training preset")
    p.add_argument("--workdir", default="runs/quickstart", help="run directory (labels, checkpoints, outputs)")
    p.add_argument("--samples", type=positive_int, default=4000, help="labelled samples per power level (K = 6)")
    p.add_argument("--kstar-samples", type=positive_int, default=300, help="test samples per P at K* = 5, 7")
    p.add_argument(
        "--steps",
        type=positive_int,
        default=argparse.SUPPRESS,
        help="training steps per utility (default: 16000 on cpu, 40 on smoke, the preset's epochs on paper)",
    )
    p.add_argument(
        "--minutes",
        type=positive_float,
        default=argparse.SUPPRESS,
        help="train on a clock instead: budget per utility [min]; results depend on the machine (labelled so)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of channels, split and initialisation")
    p.add_argument(
        "--model",
        choices=["bert", "ubert", "sao", "sao_lift"],
        default="bert",
        help="bert: one BERT per utility; ubert: one multi-task UBERT for all three (budget: steps or minutes x 3); "
        "sao / sao_lift: paper 002's optimiser on its cpu preset, evaluated on the (K, N) grid against RZF, ZF "
        "and WMMSE (--kstar-samples channels per point; default workdir runs/quickstart_<model>)",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="override a config field of the preset (e.g. ubert_head=structured; an SAO field for sao models); "
        "P, samples_per_power and utility are fixed by quickstart",
    )
    p.set_defaults(func=_quickstart)


# --------------------------------------------------------------------------------------------- pretrain
def _pretrain(args) -> int:
    from jaxbeam.data.format import load_labels
    from jaxbeam.jobs.labels import labels_for
    from jaxbeam.jobs.pretrain import pretrain

    if getattr(args, "model", "bert") == "ubert":
        return _pretrain_ubert(args)
    if getattr(args, "model", "bert") in SAO_MODELS:
        return _pretrain_sao(args)
    if getattr(args, "model", "bert") == "unfolded":
        return _pretrain_unfolded(args)
    cfg = make_config(args.preset, args.set, **direct_overrides(args))
    if cfg.train.task_weighting != "equal":
        raise UserError(f"--set task_weighting={cfg.train.task_weighting} is for --model ubert (BERT trains one task)")
    workdir = Path(args.workdir)
    if args.labels:
        try:
            labels = load_labels(args.labels)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(str(e)) from None
        if (labels.K, labels.N) != (cfg.system.K, cfg.system.N):
            raise UserError(
                f"--labels holds (K, N) = ({labels.K}, {labels.N}) but the model is configured for "
                f"({cfg.system.K}, {cfg.system.N}); pass --K/--N to match"
            )
        if labels.meta.get("utility", cfg.train.utility) != cfg.train.utility:
            raise UserError(f"--labels are {labels.meta['utility']!r} labels; --utility is {cfg.train.utility!r}")
    else:
        labels = labels_for(workdir, cfg, cfg.train.utility, cfg.system.K, cfg.train.samples_per_power, args.seed)
    try:
        pretrain(cfg, labels, workdir / "model", steps=args.steps, minutes=args.minutes)
    except ValueError as e:
        raise UserError(str(e)) from None
    print(f"best-on-validation weights in {workdir / 'model'}; evaluate with: jaxbeam evaluate {workdir / 'model'}")
    return 0


SAO_MODELS = ("sao", "sao_lift")


def _refuse_label_flags(args, trains_on: str, example: str) -> None:
    """Stop with one line naming the label-training flags given to a label-free model: what it trains on instead
    and an ``example`` of ``--set`` that changes its preset."""
    given = [
        f"--{k}"
        for k in ("labels", "utility", "K", "N", "P", "steps", "minutes", "task_labels")
        if getattr(args, k, None)
    ]
    if given:
        raise UserError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to --model {args.model} "
                        f"({trains_on}); change the preset with --set, e.g. {example}")  # fmt: skip


def _pretrain_sao(args) -> int:
    """``jaxbeam pretrain --model sao|sao_lift``: paper 002's Algorithm 1 on the SAO preset (no labels)."""
    from jaxbeam.jobs.sao import train_sao

    _refuse_label_flags(args, "unsupervised sum rate on the preset's (K, N) curriculum",
                        "--set max_users=16 --set num_layers=4")  # fmt: skip
    cfg = make_sao_config(args.preset, args.set, lift=args.model == "sao_lift")
    workdir = Path(args.workdir) / "model"
    try:
        train_sao(cfg, workdir)
    except ValueError as e:
        raise UserError(str(e)) from None
    print(f"trained MT-SAO{'-lift' if cfg.lift else ''} in {workdir}; evaluate with: jaxbeam evaluate {workdir}")
    return 0


def _pretrain_unfolded(args) -> int:
    """``jaxbeam pretrain --model unfolded``: the deep-unfolded WMMSE on its preset (no labels)."""
    from jaxbeam.cli.args import make_unfolded_config
    from jaxbeam.jobs.unfolded import train_unfolded

    _refuse_label_flags(args, "unsupervised sum rate on the preset's (K, N) systems",
                        "--set iterations=3 --set systems=16x16,12x8")  # fmt: skip
    cfg = make_unfolded_config(args.preset, args.set)
    workdir = Path(args.workdir) / "model"
    try:
        train_unfolded(cfg, workdir)
    except ValueError as e:
        raise UserError(str(e)) from None
    print(f"trained the unfolded WMMSE (T = {cfg.iterations}) in {workdir}; evaluate with: jaxbeam evaluate {workdir}")
    return 0


def _pretrain_ubert(args) -> int:
    """``jaxbeam pretrain --model ubert``: labels of all three utilities -> multi-task pre-training -> eq. 31."""
    import jaxbeam as jb
    from jaxbeam.data.format import load_labels
    from jaxbeam.jobs.builders import ubert_model
    from jaxbeam.jobs.evaluate import REFERENCES, performance_rows
    from jaxbeam.jobs.labels import labels_for
    from jaxbeam.jobs.pretrain import pretrain_ubert
    from jaxbeam.jobs.report import markdown_table

    if args.labels:
        raise UserError("--labels is for BERT; with --model ubert give the three label sets as --task-labels SR MR EE")
    cfg = make_config(args.preset, args.set, **direct_overrides(args))
    sy, workdir = cfg.system, Path(args.workdir)
    sets = {}
    for i, u in enumerate(jb.TASKS):
        if args.task_labels:
            try:
                sets[u] = load_labels(args.task_labels[i])
            except (FileNotFoundError, ValueError) as e:
                raise UserError(str(e)) from None
            if sets[u].meta.get("utility", u) != u:
                raise UserError(f"--task-labels entry {i + 1} holds {sets[u].meta['utility']!r} labels; expected {u!r}")
        else:  # same seed for every utility: the three sets share channels and split
            sets[u] = labels_for(workdir, cfg, u, sy.K, cfg.train.samples_per_power, args.seed)
    try:
        params = pretrain_ubert(
            cfg, sets, workdir / "model", steps=args.steps, minutes=args.minutes, sampling=args.sampling
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    rows = []
    for t, u in enumerate(jb.TASKS):
        rows += performance_rows(
            u,
            sets[u].split("test"),
            sy.sigma2,
            sy.Pc,
            model=ubert_model(cfg),
            params=params,
            task=t,
            model_name="ubert",
        )
    methods = ("ubert", *REFERENCES)
    header = ["utility", "K", "N", "P [W]", "samples", "label U", *(m.upper() for m in methods)]
    body = [
        [r["utility"].upper(), r["K"], r["N"], f"{r['P']:g}", r["samples"], f"{r['label']:.3f}"]
        + [f"{r[m]:.2f}" if m in r else "-" for m in methods]
        for r in rows
    ]
    print("UBERT (one model, three tasks), test split, eq. 31 performance (% of the label solver):\n")
    print(markdown_table(header, body))
    (workdir / "performance.json").write_text(json.dumps(rows, indent=2))
    print(f"\nbest-on-validation weights in {workdir / 'model'}; rows in {workdir / 'performance.json'}")
    return 0


def add_pretrain(sub) -> None:
    p = sub.add_parser(
        "pretrain",
        help="supervised pre-training of BERT (eq. 17) on a label set; resumable",
        description=(
            "Pre-train BERT on a label data set (made into WORKDIR/labels if --labels is not given). "
            "Budget: --steps training steps (reproducible), --minutes on a clock (machine-dependent), or the "
            "preset's epochs. Checkpoints (latest and best on validation), config.json and metrics.jsonl go to "
            "WORKDIR/model; running the same command again resumes; other settings on the same WORKDIR stop "
            "with an error naming what differs."
        ),
        epilog=f"example: jaxbeam pretrain --preset cpu --utility mr --workdir runs/mr {EXAMPLE_SET}",
    )
    add_config_args(p)
    p.add_argument("--labels", help="label data set directory (from `jaxbeam label`)")
    p.add_argument("--workdir", required=True, help="run directory")
    p.add_argument("--steps", type=positive_int, help="train this many steps (default: the preset's epochs)")
    p.add_argument(
        "--minutes", type=positive_float, help="train on a clock of this many minutes (machine-dependent results)"
    )
    p.add_argument("--seed", type=int, default=0, help="label seed when labels are made here (default 0)")
    p.add_argument(
        "--model",
        choices=["bert", "ubert", *SAO_MODELS, "unfolded"],
        default="bert",
        help="bert: one utility (eq. 17); ubert: multi-task UBERT on SR, MR and EE labels (eqs. 29-30, Algorithm 1);"
        " sao / sao_lift: paper 002's semi-amortised optimiser (its Algorithm 1, unsupervised, any K <= K_m, N <= N_m);"
        " unfolded: deep-unfolded WMMSE, T iterations with 3 learned scalars each (unsupervised, any K, N)",
    )
    p.add_argument(
        "--task-labels",
        nargs=3,
        metavar=("SR", "MR", "EE"),
        help="--model ubert: the SR, MR and EE label set directories (default: made into WORKDIR/labels)",
    )
    p.add_argument(
        "--sampling",
        choices=["uniform", "random"],
        default="uniform",
        help="--model ubert: task sampling, uniform (Algorithm 1) or random (Fig. 6)",
    )
    p.set_defaults(func=_pretrain)


# --------------------------------------------------------------------------------------------- finetune
def _finetune(args) -> int:
    import jax

    from jaxbeam import train
    from jaxbeam.jobs.pretrain import finetune_bert
    from jaxbeam.models import lora

    pre_cfg, pre_params = load_run(args.checkpoint)
    sy = pre_cfg.system
    cfg = make_config(
        pre_cfg.name,
        args.set,
        **{**dataclasses.asdict(sy), **{k: v for k, v in direct_overrides(args).items() if v is not None}},
        features=pre_cfg.model.features,
        num_layers=pre_cfg.model.num_layers,
        num_heads=pre_cfg.model.num_heads,
        domain=pre_cfg.model.domain,
        power=pre_cfg.model.power,
        supervised=False,
        learning_rate=args.lr,
    )
    if args.utility is None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, utility=pre_cfg.train.utility))
    sy, tc = cfg.system, cfg.train
    source = train.ChannelSource(
        sy.K, sy.N, sy.P, tc.batch_size, args.steps_per_epoch, seed=args.seed, on_device=tc.on_device
    )
    val_src = train.ChannelSource(sy.K, sy.N, sy.P, 1024, 1, seed=args.seed + 1)
    budget = {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "machine_dependent": False}
    method = "frozen" if args.frozen_encoder else args.method
    if args.frozen_encoder and args.method not in ("full", "frozen"):
        raise UserError(f"--frozen-encoder is --method frozen; it does not combine with --method {args.method}")
    adapter = None
    if method in ("lora", "moe-lora"):
        try:
            adapter = lora.LoRAConfig(
                rank=args.rank,
                alpha=2.0 * args.rank if args.alpha is None else args.alpha,
                targets=tuple({"attention": lora.ATTENTION, "ffn": lora.FFN}[t] for t in args.targets),
                experts=args.experts if method == "moe-lora" else 0,
            )
        except ValueError as e:
            raise UserError(f"--method {method}: {e}") from None
    elif args.rank != DEFAULT_RANK or args.experts != DEFAULT_EXPERTS or args.alpha is not None:
        raise UserError(f"--rank, --alpha and --experts are for --method lora / moe-lora, not {method}")
    try:
        _, res = finetune_bert(
            cfg,
            pre_params,
            Path(args.workdir),
            source,
            next(val_src.epoch(0)),
            budget=budget,
            frozen_encoder=method == "frozen",
            adapter=adapter,
            seed=args.seed,
            identity={"seed": args.seed},
            config={"finetuned_from": str(args.checkpoint)},
        )
    except ValueError as e:  # another run in WORKDIR, a checkpoint of another architecture, a bad adapter
        raise UserError(str(e)) from None
    what = {"full": "all parameters", "frozen": "frozen encoder"}.get(method)
    if adapter is not None:
        n = lora.count(jax.eval_shape(lambda: lora.init(jax.random.key(0), res.best_params, adapter)))
        what = f"{method} rank {adapter.rank}: {n:,} adapter parameters, embedding and output layer"
    print(f"fine-tuned ({what}): best validation {tc.utility.upper()} {res.best_metric:.4f}; weights in {args.workdir}")
    if adapter is not None:
        print(f"adapters stored apart in {Path(args.workdir) / 'adapters'}; `jaxbeam evaluate` merges them in")
    return 0


DEFAULT_RANK, DEFAULT_EXPERTS = 8, 4


def add_finetune(sub) -> None:
    p = sub.add_parser(
        "finetune",
        help="unsupervised fine-tuning (eq. 18) of a pre-trained BERT to other K, N, P or utility",
        description=(
            "Fine-tune the best weights of CHECKPOINT on channels drawn on the fly with the unsupervised "
            "loss -U (eq. 18). Same N: every parameter is loaded; other N: the encoder blocks are loaded and "
            "the embedding and output layer re-initialised (Sec. IV-C2). --frozen-encoder trains only those."
        ),
        epilog="example: jaxbeam finetune runs/sr/model --N 13 --K 5 --workdir runs/sr_5x13 --epochs 10",
    )
    p.add_argument("checkpoint", help="run directory of a pre-training (holds config.json and checkpoints/)")
    add_config_args(p)
    p.add_argument("--workdir", required=True, help="run directory of the fine-tuning")
    p.add_argument("--epochs", type=positive_int, default=10, help="epochs (default 10, Sec. VI-A3)")
    p.add_argument("--steps-per-epoch", type=positive_int, default=300, help="batches per epoch (default 300)")
    p.add_argument("--lr", type=positive_float, default=2e-5, help="learning rate (default 2e-5, Sec. VI-A3)")
    p.add_argument(
        "--method",
        choices=["full", "frozen", "lora", "moe-lora"],
        default="full",
        help="what trains: every parameter (default); the embedding and output layer (frozen encoder); those and "
        "low-rank adapters on the encoder (LoRA, papers 003-004) or a task-gated mixture of them (MoE-LoRA)",
    )
    p.add_argument("--frozen-encoder", action="store_true", help="the same as --method frozen")
    p.add_argument("--rank", type=positive_int, default=DEFAULT_RANK, help="LoRA rank r (default 8)")
    p.add_argument("--alpha", type=positive_float, help="LoRA scale numerator alpha (default 2 r)")
    p.add_argument(
        "--experts", type=positive_int, default=DEFAULT_EXPERTS, help="--method moe-lora: experts per layer (default 4)"
    )
    p.add_argument(
        "--targets",
        nargs="+",
        choices=["attention", "ffn"],
        default=["attention"],
        help="encoder layers that get adapters (default attention Q/K/V/O)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_finetune)


SUBCOMMANDS = [add_quickstart, add_pretrain, add_finetune]
