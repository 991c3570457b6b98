"""Acceptance checklists, pipeline diagram and evidence package, read from the live system."""
