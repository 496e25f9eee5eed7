"""Selective-search proposals for a detection set, computed once and cached on disk.

Proposing is slow (about 0.25 s per 128x128 image, Python over the pixel graph), and R-CNN and
Fast R-CNN training, evaluation and the two-stage benchmark all need the same boxes. The cache
file is keyed by the images' bytes, the search settings and the algorithm's version, so a changed
image, setting or algorithm is proposed again; it lives under ``$EDGECNN_CACHE_DIR`` (default
``~/.cache/edgecnn``)/proposals.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import numpy as np

from edgecnn.data.detection import DetectionSample
from edgecnn.runtime.selective_search import ALGORITHM, SearchSettings, selective_search

log = logging.getLogger("edgecnn.proposals")


def _cache_dir() -> Path:
    root = os.environ.get("EDGECNN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "edgecnn")
    return Path(root) / "proposals"


def _key(samples: list[DetectionSample], settings: SearchSettings) -> str:
    digest = hashlib.sha256(f"{ALGORITHM} {settings!r}".encode())
    for sample in samples:
        digest.update(np.ascontiguousarray(sample.image).tobytes())
    return digest.hexdigest()[:24]


def dataset_proposals(samples: list[DetectionSample], settings: SearchSettings | None = None,
                      progress: bool = True) -> list[np.ndarray]:
    """Per sample, (N, 4) float32 proposals in its image's pixels, best-ranked first."""
    from edgecnn.io_utils import atomic_write_bytes

    settings = settings or SearchSettings()

    path = _cache_dir() / f"{_key(samples, settings)}.npz"
    if path.is_file():
        try:
            with np.load(path) as stored:
                return [stored[f"p{i}"] for i in range(len(samples))]
        except (OSError, KeyError, ValueError):
            log.warning("ignoring an unreadable proposal cache %s", path)
    log.info("selective search on %d images (about 0.25 s each at 128x128; cached afterwards in %s)",
             len(samples), path.parent)
    iterator = samples
    if progress and sys.stderr.isatty():  # a bar redrawn into a log file is noise
        from tqdm import tqdm

        iterator = tqdm(samples, desc="selective search", unit="image", leave=False)
    found = [selective_search(sample.image, settings) for sample in iterator]
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **{f"p{i}": boxes for i, boxes in enumerate(found)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as error:
        log.warning("could not cache proposals in %s (%s)", path, error)
    return found
