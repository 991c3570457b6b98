"""Shared fixtures: a platform on temporary folders, with its own MLflow SQLite store."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TEST_SETTINGS_DIR = Path(__file__).parent / "settings"
# Before anything loads the settings in effect: short retry delays for the whole session.
os.environ.setdefault("MLPLATFORM_SETTINGS_DIR", str(TEST_SETTINGS_DIR))
# One thread for every native pool (OpenMP, OpenBLAS), here and in every process a test starts,
# before anything loads them: two test workers share two cores, and with a thread per core each
# a one-week training took 92 s against 34 s with one (the daemon tests' processes did so already).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from mlplatform.config.settings import PlatformSettings, load_settings  # noqa: E402

warnings.filterwarnings("ignore", category=Warning, module="dagster")
# The platform never needs pickle: its models load as skops with trusted types from the code.
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The test files that take longest, longest first (seconds of test time, measured): `make test`
# hands whole files to its two workers in collection order (--dist loadfile
# --no-loadscope-reorder), so a long file never starts last and the workers end together. Then the
# other files holding a slow test, then the rest; each file's tests keep their order.
SLOWEST_FILES = (
    "test_backfill", "test_gates", "test_drafted_datasets_train", "test_ui", "test_deployment",
    "test_model_performance", "test_faults", "test_daemon", "test_pipeline",
    "test_readme_commands", "test_monitoring_performance", "test_dataset_folder",
    "test_monitoring", "test_benchmark", "test_recovery", "test_train", "test_selection",
    "test_credit_data", "test_automation", "test_training_on_outcomes", "test_calibration",
    "test_performance",
)  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(SLOWEST_FILES)}
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def place(item: pytest.Item) -> tuple[int, int]:
        if item.path.stem in rank:
            return (0, rank[item.path.stem])
        return (1, 0) if item.path in slow_files else (2, 0)

    items.sort(key=place)


@dataclass
class Platform:
    root: Path
    settings: PlatformSettings
    resources: dict[str, Any]

    @property
    def data_dir(self) -> Path:
        return Path(self.settings.storage.base_dir)

    def mlflow_client(self):
        import mlflow
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(self.settings.mlflow.tracking_uri)
        return MlflowClient(tracking_uri=self.settings.mlflow.tracking_uri)


def platform_environment(root: Path) -> dict[str, str]:
    return {
        "MLPLATFORM_DATA_DIR": str(root / "data"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "MLPLATFORM_MLFLOW_ARTIFACTS": str(root / "mlartifacts"),
    }


def make_platform(root: Path, rows_per_day: int = 50000, **environ: str) -> Platform:
    """Resources on temporary folders for the definitions loaded in this process, whose dataset
    it must be (another dataset's definitions: `mlplatform_tests.code_location.platform_for`)."""
    from mlplatform.config.active import SETTINGS
    from mlplatform.definitions import build_resources
    from mlplatform.resources.data_source import DataSource, GeneratorConfig

    settings = load_settings(environ={**platform_environment(root), **environ}, root=root)
    if settings.dataset != SETTINGS.dataset:
        raise AssertionError(
            f"make_platform: the dataset {settings.dataset} is not the one the definitions were "
            f"loaded for ({SETTINGS.dataset}): load them for it with "
            "mlplatform_tests.code_location.platform_for"
        )
    resources = build_resources(settings)
    source: DataSource = resources["data_source"]  # type: ignore[assignment]
    if source.kind == "generator":
        resources["data_source"] = DataSource(
            kind="generator",
            generator=GeneratorConfig(
                **{**source.generator.model_dump(), "rows_per_day": rows_per_day}
            ),
        )
    return Platform(root=root, settings=settings, resources=resources)


@pytest.fixture
def platform(tmp_path: Path) -> Platform:
    return make_platform(tmp_path)


@pytest.fixture(scope="session")
def card_contract():
    from mlplatform.config.dataset import open_dataset
    from mlplatform.core.contract import load_contract

    return load_contract(open_dataset("card_transactions").contract)


class WebhookReceiver:
    """A local HTTP endpoint standing in for Slack: it records every JSON body posted to it."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        received: list[dict] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.messages = received
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver():
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
