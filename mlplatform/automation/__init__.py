"""Automation: jobs, the schedule and sensors that trigger the stages, and the executor choice."""
