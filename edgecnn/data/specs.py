"""DATA specs as the contract defines them: ``builtin:NAME`` (digits, shapes, painted_shapes),
``coco:ANN.json[@IMAGE_DIR]``, ``folder:DIR``, ``masks:DIR``, ``pairs:DIR``, ``unpaired:DIR``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import EdgeCNNError, did_you_mean

KINDS = ("builtin", "coco", "folder", "masks", "pairs", "unpaired")
BUILTINS = ("digits", "shapes", "painted_shapes")
SHAPES_SETS = ("shapes", "painted_shapes")  # the shapes scenes; painted: one colour family per class


@dataclass(frozen=True)
class DataSpec:
    kind: str
    location: str  # builtin name or path
    image_dir: str | None = None  # coco only: where the images are, if not beside the JSON

    def __str__(self) -> str:
        return f"{self.kind}:{self.location}" + (f"@{self.image_dir}" if self.image_dir else "")


def is_shapes(spec: DataSpec) -> bool:
    return spec.kind == "builtin" and spec.location in SHAPES_SETS


def parse_spec(text: str) -> DataSpec:
    kind, sep, rest = text.partition(":")
    if not sep or not rest:
        raise EdgeCNNError(
            f"'{text}' is not a DATA spec.",
            "Write KIND:LOCATION, e.g. builtin:digits, folder:photos/, coco:annotations.json.",
        )
    if kind not in KINDS:
        raise EdgeCNNError(f"Unknown data kind '{kind}' in '{text}'.{did_you_mean(kind, KINDS)}",
                           f"Kinds: {', '.join(KINDS)}.")
    if kind == "builtin":
        if rest not in BUILTINS:
            raise EdgeCNNError(f"Unknown builtin data set '{rest}'.{did_you_mean(rest, BUILTINS)}",
                               f"Builtin sets: {', '.join(BUILTINS)}.")
        return DataSpec(kind, rest)
    image_dir = None
    if kind == "coco" and "@" in rest:
        rest, image_dir = rest.split("@", 1)
    path = Path(rest).expanduser()
    if not path.exists():
        raise EdgeCNNError(f"Data path '{path}' (from '{text}') does not exist.", "Check the path.")
    return DataSpec(kind, str(path), image_dir)
