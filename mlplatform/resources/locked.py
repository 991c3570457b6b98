"""Resource fields that are not run config: credentials and addresses (where MLflow is, its
accounts, where data is read and stored, where alerts go).

Dagster turns every field of a `ConfigurableResource` into run config, with the value it was built
with as the default, so the Launchpad could override any of them at launch, and MLflow sends its
account to whatever tracking address it is given. A field declared `Locked[...]` is a resource
dependency in Dagster's terms (`dg.ResourceDependency`): set where the resource is built (the
code location's settings, from its environment, or a test's own values), and left out of the
resource's config schema. The Launchpad neither shows nor accepts it: run config naming it is
refused before the run is created (`Received unexpected config entry "tracking_uri" at path
root:resources:mlflow:config`), and no step runs.

A module declaring a `Locked` field must not use `from __future__ import annotations`: Dagster
recognizes the dependency from the annotation itself, not from its text. Nothing checks a locked
value's type at construction: the settings models validate the values the code location gives.
"""

import dagster as dg

# `Locked[str]`, `Locked[str | None]`: see the module's docstring.
Locked = dg.ResourceDependency


def resolved(value: str | None) -> str | None:
    """A locked field's value where the resource runs: an `EnvVar` (a secret the code location
    names rather than holds) read from this process's environment, None when it is unset; any
    other value as it is. Dagster resolves an `EnvVar` only in run config; the locked fields that
    take one call this where they are used (the reader account, the Dagster UI's links, the
    webhook)."""
    return value.get_value() if isinstance(value, dg.EnvVar) else value
