"""The model zoo. Importing this package registers nothing until a lookup needs it."""

from edgecnn.models.registry import TASKS, ModelEntry, create_model, get_entry, list_models, register_model

__all__ = ["TASKS", "ModelEntry", "create_model", "get_entry", "list_models", "register_model"]
