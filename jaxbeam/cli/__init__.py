"""The ``jaxbeam`` command: one subcommand per job (``jaxbeam SUBCOMMAND --help``).

User mistakes (bad values, missing files) end in a one-line error and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from jaxbeam.cli import evaluate, solve, training
from jaxbeam.cli.args import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxbeam", description="BERT4beam in JAX: learned beamforming, label solvers and experiments."
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    for add in training.SUBCOMMANDS + evaluate.SUBCOMMANDS + solve.SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"jaxbeam {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\njaxbeam {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        # A run directory whose checkpoints are all unreadable is the user's file problem, not a bug.
        from jaxbeam.train.checkpoint import CheckpointError

        if isinstance(e, CheckpointError):
            print(f"jaxbeam {args.command}: error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
