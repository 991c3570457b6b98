"""Dagster resources: where data comes from, where assets are stored, and MLflow."""
