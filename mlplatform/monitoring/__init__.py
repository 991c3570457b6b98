"""Observability from the Dagster instance itself: a Prometheus exporter, alert rules, a Grafana
dashboard, structured logs and a run-history report.

Dagster's own Prometheus integration pushes from inside runs, so a crashed or queued run reports
nothing; here every number is read from the instance's run and event storage, which knows them all.
"""
