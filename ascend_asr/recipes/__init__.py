"""Recipes: reproducible jobs that make the project's own reference data and models."""
