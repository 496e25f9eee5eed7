"""User-facing errors: each says what was wrong and what to do about it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgeCNNError(Exception):
    """An error caused by the user's input. The CLI prints it as one paragraph, exit code 2."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem} {fix}")


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most similar to ``name``, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return matches[0] if matches else None


def closest_names(name: str, candidates: Iterable[str], count: int = 3) -> list[str]:
    """Up to ``count`` candidates similar to ``name``, the closest first."""
    return difflib.get_close_matches(name, list(candidates), n=count, cutoff=0.4)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    match = closest(name, candidates)
    return f" Did you mean '{match}'?" if match else ""
