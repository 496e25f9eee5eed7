"""Recipes and workstation training."""
