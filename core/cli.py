"""``python -m core <command>``: the command-line face of the dashboard.

Each command module exposes ``add_parsers(subparsers)``, which adds its parser(s) and sets
``func`` to a callable ``(args) -> int``. Modules must not import TensorFlow at import time,
so ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from core.errors import DisplasiaError

COMMAND_MODULES = (
    "core.predict_cli",
    "core.bench",
    "core.explain.cli",
    "core.synth.cli",
    "core.annotations.cli",
    "core.train_demo",
    "core.summary.cli",
    "core.concepts.cli",
    "core.audit",
    "core.auth",
    "core.settings",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="DisplasiaNet explanation toolkit.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parsers(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DisplasiaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except RecursionError:
        print("error: input is nested too deeply", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: not enough memory for this input", file=sys.stderr)
        return 2
    except Exception as exc:  # last resort: one line, never a traceback
        detail = " ".join(str(exc).split())[:200]
        print(f"error: internal error ({type(exc).__name__}{': ' + detail if detail else ''})", file=sys.stderr)
        return 1
