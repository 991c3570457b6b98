"""Quality gates as asset checks, one module per stage; thresholds and severities come from
config/quality_gates.yaml. ERROR gates are blocking: nothing downstream runs when they fail."""
