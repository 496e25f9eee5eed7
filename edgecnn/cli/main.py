"""Entry point of the ``edgecnn`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgecnn import __version__
from edgecnn.errors import EdgeCNNError

# Command modules, each with add_parsers(subparsers); their handlers import the heavy stuff.
_COMMAND_MODULES = ("zoo", "data", "train", "export", "evaluate", "device", "quickstart")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="edgecnn",
        description="Classic CNNs from the textbook to edge devices: build, train, shrink, convert, run.",
    )
    parser.add_argument("--version", action="version", version=f"edgecnn {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in _COMMAND_MODULES:
        importlib.import_module(f"edgecnn.cli.{module}").add_parsers(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except EdgeCNNError as error:
        print(f"edgecnn {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgecnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
