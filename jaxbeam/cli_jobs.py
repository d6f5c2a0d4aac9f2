"""The training jobs of the ``jaxbeam`` command: quickstart, pretrain, finetune, evaluate, bench.

Registered by :func:`jaxbeam.cli.build_parser`; user mistakes raise :class:`jaxbeam.cli.UserError`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from jaxbeam.cli import UserError, _positive_float, _positive_int

_EXAMPLE_SET = "--set learning_rate=5e-4 --set num_layers=4"


def _coerce(field_type: str, default, text: str):
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if isinstance(default, tuple):
        return tuple(float(t) for t in text.split(","))
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    return text


def make_config(preset: str, sets: list[str] | None, **direct):
    """``configs.get_preset(preset, ...)`` from ``--set NAME=VALUE`` strings and direct overrides."""
    from jaxbeam import configs

    if preset not in configs.PRESETS:
        raise UserError(f"--preset must be one of {', '.join(configs.PRESETS)}; got {preset!r}")
    base = configs.PRESETS[preset]
    fields = {
        f.name: (f.type, getattr(part, f.name))
        for part in (base.system, base.model, base.train)
        for f in dataclasses.fields(part)
    }
    overrides = {}
    for item in sets or []:
        if "=" not in item:
            raise UserError(f"--set expects NAME=VALUE; got {item!r}")
        name, text = item.split("=", 1)
        if name not in fields:
            raise UserError(f"--set: unknown config field {name!r}; known: {', '.join(sorted(fields))}")
        try:
            overrides[name] = _coerce(*fields[name], text)
        except ValueError as e:
            raise UserError(f"--set {name}: {e}") from None
    overrides.update({k: v for k, v in direct.items() if v is not None})
    try:
        return configs.get_preset(preset, **overrides)
    except ValueError as e:
        raise UserError(str(e)) from None


def _add_config_args(p, *, utility=True):
    p.add_argument("--preset", default="cpu", help="configuration preset: cpu | paper | smoke (default cpu)")
    if utility:
        p.add_argument("--utility", choices=["sr", "mr", "ee"], help="system utility (default: the preset's, sr)")
    p.add_argument("--K", type=_positive_int, help="users (default: the preset's)")
    p.add_argument("--N", type=_positive_int, help="transmit antennas (default: the preset's)")
    p.add_argument("--P", type=_positive_float, nargs="+", help="power budgets [W] (default: the preset's)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override any config field")


def _direct(args):
    return {
        "utility": getattr(args, "utility", None),
        "K": args.K,
        "N": args.N,
        "P": tuple(args.P) if args.P else None,
    }


# ------------------------------------------------------------------------------------------- quickstart
def _quickstart(args) -> int:
    from jaxbeam import quickstart

    opts = quickstart.QuickstartOptions(
        preset=args.preset,
        workdir=Path(args.workdir),
        samples_per_power=args.samples,
        steps_per_model=getattr(args, "steps", None),
        minutes_per_model=getattr(args, "minutes", None),
        kstar_samples_per_power=args.kstar_samples,
        seed=args.seed,
        model=args.model,
    )
    make_config(args.preset, None)  # validates the preset name
    if opts.steps_per_model is not None and opts.minutes_per_model is not None:
        raise UserError("give --steps or --minutes, not both")
    result = quickstart.run(opts)
    print("\n" + (Path(args.workdir) / "quickstart.md").read_text())
    print(f"total {result['seconds'] / 60:.1f} min on {result['device']}; table, JSON and PNG in {args.workdir}/")
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
    p.add_argument("--samples", type=_positive_int, default=4000, help="labelled samples per power level (K = 6)")
    p.add_argument("--kstar-samples", type=_positive_int, default=300, help="test samples per P at K* = 5, 7")
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=argparse.SUPPRESS,
        help="training steps per utility (default: 16000 on cpu, 40 on smoke, the preset's epochs on paper)",
    )
    p.add_argument(
        "--minutes",
        type=_positive_float,
        default=argparse.SUPPRESS,
        help="train on a clock instead: budget per utility [min]; results depend on the machine (labelled so)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of channels, split and initialisation")
    p.add_argument(
        "--model",
        choices=["bert", "ubert"],
        default="bert",
        help="bert: one BERT per utility; ubert: one multi-task UBERT for all three (budget: steps or minutes x 3)",
    )
    p.set_defaults(func=_quickstart)


# --------------------------------------------------------------------------------------------- pretrain
def _pretrain(args) -> int:
    from jaxbeam.data import load_labels
    from jaxbeam.pipeline import labels_for, pretrain

    if getattr(args, "model", "bert") == "ubert":
        return _pretrain_ubert(args)
    cfg = make_config(args.preset, args.set, **_direct(args))
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


def _pretrain_ubert(args) -> int:
    """``jaxbeam pretrain --model ubert``: labels of all three utilities -> multi-task pre-training -> eq. 31."""
    import jaxbeam as jb
    from jaxbeam.data import load_labels
    from jaxbeam.evaluate import markdown_table
    from jaxbeam.pipeline import REFERENCES, labels_for, performance_rows, pretrain_ubert, ubert_model

    if args.labels:
        raise UserError("--labels is for BERT; with --model ubert give the three label sets as --task-labels SR MR EE")
    cfg = make_config(args.preset, args.set, **_direct(args))
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
        epilog=f"example: jaxbeam pretrain --preset cpu --utility mr --workdir runs/mr {_EXAMPLE_SET}",
    )
    _add_config_args(p)
    p.add_argument("--labels", help="label data set directory (from `jaxbeam label`)")
    p.add_argument("--workdir", required=True, help="run directory")
    p.add_argument("--steps", type=_positive_int, help="train this many steps (default: the preset's epochs)")
    p.add_argument(
        "--minutes", type=_positive_float, help="train on a clock of this many minutes (machine-dependent results)"
    )
    p.add_argument("--seed", type=int, default=0, help="label seed when labels are made here (default 0)")
    p.add_argument(
        "--model",
        choices=["bert", "ubert"],
        default="bert",
        help="bert: one utility (eq. 17); ubert: multi-task UBERT on SR, MR and EE labels (eqs. 29-30, Algorithm 1)",
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
def _load_run(checkpoint: str):
    from jaxbeam import configs
    from jaxbeam.train import load_config, load_params

    path = Path(checkpoint)
    if not (path / "config.json").is_file():
        raise UserError(f"{checkpoint} is not a training run directory (no config.json)")
    d = load_config(path)
    cfg = configs.Config.from_dict({k: d[k] for k in ("name", "system", "model", "train")})
    try:
        params = load_params(path, which="best")
    except FileNotFoundError as e:
        raise UserError(str(e)) from None
    return cfg, params


def _finetune(args) -> int:
    import jax

    from jaxbeam import train
    from jaxbeam.pipeline import bert_model, check_run, loss_for, params_digest, train_identity

    pre_cfg, pre_params = _load_run(args.checkpoint)
    sy = pre_cfg.system
    cfg = make_config(
        pre_cfg.name,
        args.set,
        **{**dataclasses.asdict(sy), **{k: v for k, v in _direct(args).items() if v is not None}},
        features=pre_cfg.model.features,
        num_layers=pre_cfg.model.num_layers,
        num_heads=pre_cfg.model.num_heads,
        supervised=False,
        learning_rate=args.lr,
    )
    if args.utility is None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, utility=pre_cfg.train.utility))
    sy, tc = cfg.system, cfg.train
    model = bert_model(cfg)
    source = train.ChannelSource(sy.K, sy.N, sy.P, tc.batch_size, args.steps_per_epoch, seed=args.seed)
    fresh = model.init(jax.random.PRNGKey(args.seed), *(next(source.epoch(0))[k][:1] for k in ("H", "P")))["params"]
    params = train.transfer_params(pre_params, fresh)
    labels = train.trainable_labels(params) if args.frozen_encoder else None
    val_src = train.ChannelSource(sy.K, sy.N, sy.P, 1024, 1, seed=args.seed + 1)
    budget = {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "machine_dependent": False}
    extra = {"finetuned_from": params_digest(pre_params), "frozen_encoder": args.frozen_encoder, "seed": args.seed}
    ident = train_identity(cfg, {}, budget, model, **extra)
    try:
        check_run(Path(args.workdir), ident)
    except ValueError as e:
        raise UserError(str(e)) from None
    res = train.fit(
        model,
        loss_for(cfg),
        source,
        epochs=args.epochs,
        learning_rate=tc.learning_rate,
        val=next(val_src.epoch(0)),
        workdir=Path(args.workdir),
        config={
            **cfg.to_dict(),
            "finetuned_from": str(args.checkpoint),
            "frozen_encoder": args.frozen_encoder,
            "identity": ident,
        },
        init_params=params,
        trainable_labels=labels,
        seed=args.seed,
    )
    print(
        f"fine-tuned ({'frozen encoder' if args.frozen_encoder else 'all parameters'}): best validation "
        f"{tc.utility.upper()} {res.best_metric:.4f}; weights in {args.workdir}"
    )
    return 0


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
    p.add_argument("checkpoint", help="run directory of a pre-training (holds config.json, best/)")
    _add_config_args(p)
    p.add_argument("--workdir", required=True, help="run directory of the fine-tuning")
    p.add_argument("--epochs", type=_positive_int, default=10, help="epochs (default 10, Sec. VI-A3)")
    p.add_argument("--steps-per-epoch", type=_positive_int, default=300, help="batches per epoch (default 300)")
    p.add_argument("--lr", type=_positive_float, default=2e-5, help="learning rate (default 2e-5, Sec. VI-A3)")
    p.add_argument("--frozen-encoder", action="store_true", help="train only embedding and output layer")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_finetune)


# --------------------------------------------------------------------------------------------- evaluate
def _evaluate(args) -> int:
    from jaxbeam.data import load_labels
    from jaxbeam.evaluate import markdown_table
    from jaxbeam.pipeline import REFERENCES, bert_model, performance_rows, ubert_model
    from jaxbeam.train import load_config
    from jaxbeam.utility import TASKS

    cfg, params = _load_run(args.checkpoint)
    ubert = load_config(Path(args.checkpoint)).get("model_kind") == "ubert"  # any K and N, one model per task
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
            params=params,
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


def add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="eq. 31 performance of a trained model and MRT/ZF/RZF/WMMSE on label sets",
        description=(
            "Evaluate the best weights of CHECKPOINT on one or more label data sets: performance (eq. 31) per "
            "utility, P and K against the label solver, beside MRT, ZF, RZF and WMMSE."
        ),
        epilog="example: jaxbeam evaluate runs/sr/model --labels data/sr_6_12 data/sr_7_12 --csi-error-db -20",
    )
    p.add_argument("checkpoint", help="run directory of a training (holds config.json, best/)")
    p.add_argument("--labels", nargs="+", required=True, help="label data set directories")
    p.add_argument("--split", choices=["test", "val", "train", "all"], default="test", help="part (default test)")
    p.add_argument("--csi-error-db", type=float, help="evaluate with CSI error ||e||^2 = mu ||h||^2, mu in dB")
    p.add_argument("--out", help="write the rows as JSON here")
    p.set_defaults(func=_evaluate)


# ------------------------------------------------------------------------------------------------ bench
def _bench(args) -> int:
    from jaxbeam.bench import format_rows, run_inference_benchmark, write_json

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


def add_bench(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="jitted BERT inference latency / throughput (same as python -m benchmarks.inference_latency)",
        description="Median and p90 latency, compile time, FLOPs and FLOP/s of the jitted BERT forward pass.",
        epilog="example: jaxbeam bench --presets cpu --batches 1 32",
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes that run in seconds")
    p.add_argument("--presets", nargs="+", default=["cpu", "paper"], choices=["cpu", "paper"])
    p.add_argument("--batches", nargs="+", type=_positive_int, default=[1, 32, 1024])
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    p.add_argument("--out", default="results/inference_latency.json", help="JSON output path")
    p.set_defaults(func=_bench)


SUBCOMMANDS = [add_quickstart, add_pretrain, add_finetune, add_evaluate, add_bench]
