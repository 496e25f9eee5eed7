"""predictions.jsonl for runs that never end (a camera service on an SD card): one JSON document
a line, each line written whole and flushed, and with a size cap the file rotates, keeping the
newest ``keep`` full files beside it (predictions.1.jsonl newest ... predictions.N.jsonl oldest).
On disk there is then never more than ``max_bytes * (keep + 1)`` (plus one line, where a single
record is larger than the cap), and every file ends on a whole line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from edgecnn.errors import EdgeCNNError


class JsonLines:
    """``write(record)`` appends one line. ``max_bytes=None``: one file that grows (truncated
    at the start, as a fresh run's output). With ``max_bytes``, an existing file from an earlier
    run (a restarted service) is rotated, not overwritten."""

    def __init__(self, path: str | os.PathLike, max_bytes: int | None = None, keep: int = 5) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise EdgeCNNError(f"The predictions file size cap must be positive, got {max_bytes} bytes.",
                               "Pass --rotate-mb with a positive size, e.g. 10.")
        if keep < 0:
            raise EdgeCNNError(f"Cannot keep {keep} rotated files.", "Pass --rotate-keep 0 or more.")
        self.path, self.max_bytes, self.keep = Path(path), max_bytes, keep
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if max_bytes is not None and self.path.exists() and self.path.stat().st_size > 0:
            self._rotate_files()
        self._stream = self.path.open("wb")
        self._size = 0

    def rotated(self, index: int) -> Path:
        """The path of the ``index``-th newest rotated file (1 is the newest)."""
        return self.path.with_name(f"{self.path.stem}.{index}{self.path.suffix}")

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record) + "\n").encode("utf-8")
        if self.max_bytes is not None and self._size > 0 and self._size + len(line) > self.max_bytes:
            self._stream.close()
            self._rotate_files()
            self._stream = self.path.open("wb")
            self._size = 0
        self._stream.write(line)
        self._stream.flush()
        self._size += len(line)

    def _rotate_files(self) -> None:
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
            return
        self.rotated(self.keep).unlink(missing_ok=True)
        for index in range(self.keep - 1, 0, -1):
            if self.rotated(index).exists():
                os.replace(self.rotated(index), self.rotated(index + 1))
        os.replace(self.path, self.rotated(1))

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> JsonLines:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
