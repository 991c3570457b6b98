"""The whole platform in one place: assets, jobs and resources, configured from the settings."""

from __future__ import annotations

import dagster as dg

from mlplatform.assets.batch_scores import batch_scores
from mlplatform.assets.features import features
from mlplatform.assets.model_performance import model_performance
from mlplatform.assets.outcomes import outcomes
from mlplatform.assets.raw_transactions import raw_transactions
from mlplatform.assets.registered_model_version import registered_model_version
from mlplatform.assets.shadow_scores import shadow_scores
from mlplatform.assets.trained_model import trained_model
from mlplatform.assets.validated_transactions import validated_transactions
from mlplatform.automation.execution import job_executor
from mlplatform.automation.failure_alerts import run_failure_alert
from mlplatform.automation.jobs import retraining, training_pipeline
from mlplatform.automation.monitoring import (
    outcomes_arrived,
    performance_decay,
    performance_monitoring,
    rollback,
)
from mlplatform.automation.recovery import (
    canceled_run_cleanup,
    failed_run_cleanup,
    stalled_retry_recovery,
)
from mlplatform.automation.schedules import daily_training
from mlplatform.automation.sensors import (
    drift_retraining,
    new_data,
    run_success_notification,
)
from mlplatform.checks.features import features_checks
from mlplatform.checks.raw_transactions import raw_transactions_checks
from mlplatform.checks.trained_model import trained_model_checks
from mlplatform.checks.validated_transactions import validated_transactions_checks
from mlplatform.config.active import CONTRACT, SETTINGS
from mlplatform.config.settings import PlatformSettings
from mlplatform.monitoring.logs import platform_loggers
from mlplatform.resources.alerts import alert_webhook_from_environment, dagster_ui_url
from mlplatform.resources.data_source import DataSource, GeneratorConfig
from mlplatform.resources.io_managers import JsonIOManager, ParquetIOManager
from mlplatform.resources.mlflow import MlflowResource
from mlplatform.resources.mlflow_accounts import reader_account_from_environment

ASSETS = [
    raw_transactions,
    validated_transactions,
    features,
    trained_model,
    registered_model_version,
    batch_scores,
    shadow_scores,
]
# After deployment, for a dataset whose contract declares outcomes: outcomes joined back as they
# arrive, and each scored day's realized performance (`model_performance` carries its own checks).
MONITORING_ASSETS = [outcomes, model_performance] if CONTRACT.outcomes else []
MONITORING_JOBS = [performance_monitoring] if CONTRACT.outcomes else []
MONITORING_SENSORS = [outcomes_arrived, performance_decay] if CONTRACT.outcomes else []

# Quality gates (registered_model_version carries its own two checks).
CHECKS = [
    raw_transactions_checks,
    validated_transactions_checks,
    features_checks,
    trained_model_checks,
]


def build_resources(settings: PlatformSettings) -> dict[str, object]:
    """Every resource the assets need, configured from one settings object."""
    source = settings.data_source
    return {
        "io_manager": ParquetIOManager(base_dir=settings.storage.base_dir),
        "json_io_manager": JsonIOManager(base_dir=settings.storage.base_dir),
        "data_source": DataSource(
            kind=source.kind,
            path=source.path,
            file_format=source.file_format,
            csv_max_field_chars=source.csv_max_field_chars,
            generator=GeneratorConfig(**source.generator.model_dump()),
            outcomes_path=settings.outcomes.path,
            outcomes_file_format=settings.outcomes.file_format,
        ),
        "alert_webhook": alert_webhook_from_environment(),
        "mlflow": MlflowResource(
            tracking_uri=settings.mlflow.tracking_uri,
            registry_uri=settings.mlflow.registry_uri,
            artifact_location=settings.mlflow.artifact_location,
            experiment_name=settings.mlflow.experiment_name,
            registered_model_name=settings.mlflow.registered_model_name,
            ui_url=settings.mlflow.ui_url,
            dagster_ui_url=dagster_ui_url(),
            **reader_account_from_environment(),
        ),
    }


defs = dg.Definitions(
    assets=[*ASSETS, *MONITORING_ASSETS],
    asset_checks=CHECKS,
    jobs=[training_pipeline, retraining, rollback, *MONITORING_JOBS],
    schedules=[daily_training],
    sensors=[
        new_data,
        run_failure_alert,
        run_success_notification,
        drift_retraining,
        failed_run_cleanup,
        canceled_run_cleanup,
        stalled_retry_recovery,
        *MONITORING_SENSORS,
    ],
    resources=build_resources(SETTINGS),
    # `json`: log lines as JSON with run id, asset and partition, for runs that ask for it.
    loggers=platform_loggers(),
    # Jobs and ad-hoc materializations alike (orchestration.yaml, `execution`).
    executor=job_executor(),
)
