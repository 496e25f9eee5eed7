"""The model zoo: one file per family, a leaf registry (``registry``) they register into, and the
lookups that load them (``zoo``: ``create_model``, ``list_models``)."""
