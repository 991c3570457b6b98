"""Automation and recovery: jobs, schedule, sensors, alerts, retry and error policies."""
