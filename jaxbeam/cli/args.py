"""What every subcommand shares: the user-error type, argument types and preset overrides."""

from __future__ import annotations

import argparse
import dataclasses


class UserError(Exception):
    """A mistake in the command line or its inputs; printed without a traceback."""


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if v < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {v}")
    return v


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def nonnegative_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v}")
    return v


CHANNEL_CHOICES = ("rayleigh", "correlated", "pathloss", "sionna-uma", "sionna-umi", "sionna-rma", "sionna-cdl")


def add_channel_args(p: argparse.ArgumentParser, what: str, default: str | None = "rayleigh") -> None:
    """``--channel`` and ``--channel-arg NAME=NUMBER`` (read them with :func:`channel_args`)."""
    p.add_argument(
        "--channel",
        choices=CHANNEL_CHOICES,
        default=default,
        help="channel source (jaxbeam.core.channels; sionna-*: 3GPP TR 38.901 through the 'sionna' extra); " + what,
    )
    p.add_argument(
        "--channel-arg",
        action="append",
        metavar="NAME=NUMBER",
        help="a parameter of the channel source, repeatable (correlated: rho, max_angle_deg; pathloss: radius, "
        "min_distance, exponent, shadowing_db; sionna-uma/umi/rma: carrier_frequency, gain_db; sionna-cdl (CDL-C, "
        "one link per user): carrier_frequency, delay_spread, max_angle_deg)",
    )


def channel_args(args) -> dict[str, float]:
    """The ``--channel-arg NAME=NUMBER`` items as a dict; :class:`UserError` for a malformed one."""
    out = {}
    for item in args.channel_arg or []:
        name, sep, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise UserError(f"--channel-arg must be NAME=NUMBER (e.g. exponent=3.5); got {item!r}")
    return out


EXAMPLE_SET = "--set learning_rate=5e-4 --set num_layers=4"


def _coerce(field_type: str, default, text: str):
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise ValueError(f"expected true/false, got {text!r}")
    if isinstance(default, tuple) and default and all(isinstance(v, tuple) for v in default):  # (K, N) pairs
        try:
            return tuple(tuple(int(x) for x in item.split("x")) for item in text.split(","))
        except ValueError:
            raise ValueError(f"expected KxN pairs separated by commas (e.g. 12x12,16x8); got {text!r}") from None
    if isinstance(default, tuple):
        cast = int if default and all(isinstance(v, int) for v in default) else float
        return tuple(cast(t) for t in text.split(","))
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    return text


def parse_sets(sets: list[str] | None, fields: dict, what: str) -> dict:
    """``--set NAME=VALUE`` strings -> ``{NAME: value}``, each value coerced to its field's type
    (``fields``: ``{name: (type, default)}``); a ``UserError`` naming the bad item otherwise."""
    overrides = {}
    for item in sets or []:
        if "=" not in item:
            raise UserError(f"--set expects NAME=VALUE; got {item!r}")
        name, text = item.split("=", 1)
        if name not in fields:
            raise UserError(f"--set: unknown {what} {name!r}; known: {', '.join(sorted(fields))}")
        try:
            overrides[name] = _coerce(*fields[name], text)
        except ValueError as e:
            raise UserError(f"--set {name}: {e}") from None
    return overrides


def config_overrides(preset: str, sets: list[str] | None) -> dict:
    """``{field: typed value}`` of ``--set NAME=VALUE`` strings for the fields of ``preset``'s config."""
    from jaxbeam import configs

    if preset not in configs.PRESETS:
        raise UserError(f"--preset must be one of {', '.join(configs.PRESETS)}; got {preset!r}")
    base = configs.PRESETS[preset]
    fields = {
        f.name: (f.type, getattr(part, f.name))
        for part in (base.system, base.model, base.train)
        for f in dataclasses.fields(part)
    }
    return parse_sets(sets, fields, "config field")


def make_config(preset: str, sets: list[str] | None, **direct):
    """``configs.get_preset(preset, ...)`` from ``--set NAME=VALUE`` strings and direct overrides."""
    from jaxbeam import configs

    overrides = config_overrides(preset, sets)
    overrides.update({k: v for k, v in direct.items() if v is not None})
    try:
        return configs.get_preset(preset, **overrides)
    except ValueError as e:
        raise UserError(str(e)) from None


def make_sao_config(preset: str, sets: list[str] | None, **direct):
    """``configs.get_sao_preset(preset, ...)`` from ``--set NAME=VALUE`` strings and direct overrides."""
    from jaxbeam import configs

    if preset not in configs.SAO_PRESETS:
        raise UserError(f"--preset must be one of {', '.join(configs.SAO_PRESETS)}; got {preset!r}")
    base = configs.SAO_PRESETS[preset]
    fields = {f.name: (f.type, getattr(base, f.name)) for f in dataclasses.fields(base)}
    overrides = parse_sets(sets, fields, "SAO config field")
    try:
        return configs.get_sao_preset(preset, **overrides, **direct)
    except ValueError as e:
        raise UserError(str(e)) from None


def make_unfolded_config(preset: str, sets: list[str] | None):
    """``configs.get_unfolded_preset(preset, ...)`` from ``--set NAME=VALUE`` strings."""
    from jaxbeam import configs

    if preset not in configs.UNFOLDED_PRESETS:
        raise UserError(f"--preset must be one of {', '.join(configs.UNFOLDED_PRESETS)}; got {preset!r}")
    base = configs.UNFOLDED_PRESETS[preset]
    fields = {f.name: (f.type, getattr(base, f.name)) for f in dataclasses.fields(base)}
    try:
        return configs.get_unfolded_preset(preset, **parse_sets(sets, fields, "unfolded config field"))
    except ValueError as e:
        raise UserError(str(e)) from None


def add_config_args(p, *, utility=True):
    p.add_argument("--preset", default="cpu", help="configuration preset: cpu | paper | smoke (default cpu)")
    if utility:
        p.add_argument("--utility", choices=["sr", "mr", "ee"], help="system utility (default: the preset's, sr)")
    p.add_argument("--K", type=positive_int, help="users (default: the preset's)")
    p.add_argument("--N", type=positive_int, help="transmit antennas (default: the preset's)")
    p.add_argument("--P", type=positive_float, nargs="+", help="power budgets [W] (default: the preset's)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="override any config field")


def direct_overrides(args):
    return {
        "utility": getattr(args, "utility", None),
        "K": args.K,
        "N": args.N,
        "P": tuple(args.P) if args.P else None,
    }


def run_loader(checkpoint: str):
    """``(cfg, ubert, params_for)`` of a BERT or UBERT run directory (:func:`jaxbeam.jobs.load.run_params`), its
    errors as :class:`UserError`."""
    from jaxbeam.jobs.load import run_params

    try:
        cfg, ubert, params_for = run_params(checkpoint)
    except (ValueError, FileNotFoundError) as e:
        raise UserError(str(e)) from None

    def params(task=None):
        try:
            return params_for(task)
        except ValueError as e:
            raise UserError(str(e)) from None

    return cfg, ubert, params


def load_run(checkpoint: str):
    """The config and best parameters of a training run directory (adapters merged), or a :class:`UserError`."""
    cfg, _, params_for = run_loader(checkpoint)
    return cfg, params_for()
