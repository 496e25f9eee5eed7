"""Helpers shared by the command modules."""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any

from edgecnn.errors import EdgeCNNError


def require_training_stack(command: str) -> None:
    """Fail with the install command instead of an ImportError when the [train] extra is missing."""
    missing = [name for name in ("tensorflow", "tf_keras") if importlib.util.find_spec(name) is None]
    if missing:
        raise EdgeCNNError(
            f"`edgecnn {command}` needs the workstation install ({', '.join(missing)} not found).",
            'Install it with: pip install "edgecnn[train]"',
        )


def print_json(document: Any) -> None:
    """Exactly one JSON document on stdout (logs and progress go to stderr)."""
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_labels(path: str | None) -> list[str] | None:
    """Class names from a text file, one per line; None when no file is given."""
    if not path:
        return None
    from edgecnn.runtime.metadata import read_labels as read_label_file

    return read_label_file(path)
