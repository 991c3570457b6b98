"""The MLflow registry as the exporter reads it: every registered model's versions that hold an
alias, with their test metrics (`mlplatform_model_*`)."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelAlias:
    """A registered model version holding an alias, with its test metrics."""

    model: str
    version: str
    alias: str
    created: float
    metrics: dict[str, float] = field(default_factory=dict)


class MlflowRegistryReader:
    """The versions holding an alias in every registered model, with their test metrics."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self._client = None

    def client(self):
        if self._client is None:
            # Imported here: mlflow costs seconds to import, and only this source needs it.
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
            )
        return self._client

    def __call__(self) -> list[ModelAlias]:
        client = self.client()
        found: list[ModelAlias] = []
        for model in client.search_registered_models(max_results=200):
            for alias, version in sorted((model.aliases or {}).items()):
                model_version = client.get_model_version(model.name, str(version))
                # Registration tags carry the test metrics (`test_<metric>`); older versions may
                # only have them on their MLflow run.
                metrics = _prefixed(model_version.tags, "test_")
                if not metrics and model_version.run_id:
                    metrics = _prefixed(client.get_run(model_version.run_id).data.metrics, "test_")
                found.append(
                    ModelAlias(
                        model=model.name,
                        version=str(model_version.version),
                        alias=alias,
                        created=model_version.creation_timestamp / 1000.0,
                        metrics=metrics,
                    )
                )
        return found


def _prefixed(values: dict, prefix: str) -> dict[str, float]:
    metrics = {}
    for key, value in values.items():
        if key.startswith(prefix):
            try:
                metrics[key[len(prefix) :]] = float(value)
            except (TypeError, ValueError):
                continue
    return metrics
