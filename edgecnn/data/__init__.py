"""Data: DATA specs (builtin:, coco:, folder:, masks:, pairs:, unpaired:) and loaders."""

from edgecnn.data.specs import DataSpec, parse_spec

__all__ = ["DataSpec", "parse_spec"]
