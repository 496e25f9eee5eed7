"""Zoo listing with parameter counts. Counting needs each model built once, which takes seconds
for the deep ones, so counts are cached per model and keyed by the hash of the zoo's and the
layer library's source files: any change there recomputes them."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from edgecnn.io_utils import atomic_write_text
from edgecnn.models.zoo import get_entry


def _cache_file() -> Path:
    root = os.environ.get("EDGECNN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "edgecnn"
    )
    return Path(root) / "zoo_params.json"


@functools.cache
def _sources_digest() -> str:
    """Hash of every file that can change a model's shape: the zoo and the layer library."""
    package = Path(__file__).parent.parent
    digest = hashlib.sha256()
    for source in sorted([*(package / "models").glob("*.py"), *(package / "layers").glob("*.py")]):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _source_key(name: str) -> str:
    get_entry(name)  # unknown names fail here
    return f"{name}:{_sources_digest()}"


def parameter_counts(names: Iterable[str], progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Learnable parameters of each model at its default configuration."""
    cache_path = _cache_file()
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    counts, changed = {}, False
    for name in names:
        key = _source_key(name)
        if key not in cache:
            from edgecnn._keras import keras, tf
            from edgecnn.models.summary import count_parameters
            from edgecnn.models.zoo import create_model

            if progress:
                progress(name)
            # built in a graph of its own, a model's variables get shapes but no values: VGG-16
            # eagerly would allocate 553 MB of weights, and the process keeps most of it
            with tf.Graph().as_default():
                cache[key] = count_parameters(create_model(name))[0]
            keras.backend.clear_session()
            changed = True
        counts[name] = cache[key]
    if changed:
        try:
            atomic_write_text(cache_path, json.dumps(cache, indent=0, sort_keys=True))
        except OSError:
            pass  # a read-only home only costs the rebuild next time
    return counts
