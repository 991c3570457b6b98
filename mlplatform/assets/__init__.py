"""Thin Dagster wiring around `mlplatform.core`, one module per stage."""
