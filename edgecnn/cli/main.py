"""Entry point of the ``edgecnn`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from edgecnn.version import __version__
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
    parser.add_argument("--verbose", action="store_true", help="also show native runtime logs and debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module in _COMMAND_MODULES:
        importlib.import_module(f"edgecnn.cli.{module}").add_parsers(subparsers)
    for command in subparsers.choices.values():  # accepted after the command too: `edgecnn predict ... --verbose`
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="also show native runtime logs (LiteRT, TensorFlow) and debug messages")
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a message comes (main() may run many times in one
    process, each with its own stderr)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets it: the property decides
        pass


def _configure_output(verbose: bool) -> None:
    """Progress and warnings of the library's loggers on stderr; native logs only when verbose."""
    from edgecnn.runtime.native_logs import set_verbose

    set_verbose(verbose)
    logger = logging.getLogger("edgecnn")
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        # one line per message: TensorFlow's import may give the root logger a handler of its own
        logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_output(args.verbose)
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
