"""A dataset is one folder: its contract, its gate overrides and its own settings side by side,
found from the one name or path the user gives (`dataset:` in platform.yaml, `MLPLATFORM_DATASET`).

```
<folder>/
  contract.yaml        required: the dataset contract
  quality_gates.yaml   optional: gate overrides, same keys as config/quality_gates.yaml
  settings.yaml        optional: partitions, data_source, features, training (over platform.yaml)
  README.md            optional: notes for people, not read
```
Anything else in the folder is an error naming it: a `contract.yml` or `quality_gate.yaml` read as
nothing would leave the defaults in force without a word.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlplatform.config.loading import PACKAGE_CONFIG_DIR, SettingsError, absolute_local, read_yaml

PACKAGED_DATASETS_DIR = PACKAGE_CONFIG_DIR / "datasets"
DATASET_ENV = "MLPLATFORM_DATASET"

CONTRACT_FILE = "contract.yaml"
GATES_FILE = "quality_gates.yaml"
SETTINGS_FILE = "settings.yaml"
NOTES_FILE = "README.md"
DATASET_FILES = (CONTRACT_FILE, GATES_FILE, SETTINGS_FILE, NOTES_FILE)

# The platform.yaml sections a dataset may set for itself; storage and MLflow belong to the
# deployment, and the dataset is chosen outside the folder.
DATASET_SETTINGS_SECTIONS = ("partitions", "data_source", "outcomes", "features", "training")


@dataclass(frozen=True)
class Dataset:
    """A checked dataset folder (absolute); the optional files are None when absent."""

    folder: Path

    @property
    def contract(self) -> Path:
        return self.folder / CONTRACT_FILE

    @property
    def quality_gates(self) -> Path | None:
        return self._optional(GATES_FILE)

    @property
    def settings(self) -> Path | None:
        return self._optional(SETTINGS_FILE)

    def _optional(self, name: str) -> Path | None:
        path = self.folder / name
        return path if path.exists() else None


def packaged_dataset_names() -> list[str]:
    return sorted(p.name for p in PACKAGED_DATASETS_DIR.iterdir() if p.is_dir())


def open_dataset(name_or_path: str | os.PathLike[str], root: Path | None = None) -> Dataset:
    """A packaged dataset's name (`credit_data`) or a path to a dataset folder (relative to `root`,
    the working directory by default), checked: the folder exists, holds `contract.yaml` and
    nothing the platform would not read. A bare name is a packaged dataset's first (`./name` is
    a folder of that name)."""
    given = str(name_or_path)
    packaged = PACKAGED_DATASETS_DIR / given
    if re.fullmatch(r"[A-Za-z0-9_.-]+", given) and given not in (".", "..") and packaged.is_dir():
        folder = packaged
    else:
        folder = Path(given).expanduser()
        if not folder.is_absolute():
            folder = (root or Path.cwd()) / folder
        folder = folder.resolve()
    if folder.is_file():
        raise SettingsError(
            f"dataset: '{given}' is a file; a dataset is a folder holding {CONTRACT_FILE} "
            f"(and optionally {GATES_FILE}, {SETTINGS_FILE}, {NOTES_FILE})"
        )
    if not folder.is_dir():
        raise SettingsError(
            f"dataset: '{given}' is neither a packaged dataset "
            f"({', '.join(packaged_dataset_names())}) nor an existing folder"
        )
    unexpected = sorted(p.name for p in folder.iterdir() if p.name not in DATASET_FILES)
    if unexpected:
        raise SettingsError(
            f"dataset {folder}: " + "; ".join(_not_a_dataset_file(name) for name in unexpected)
            + f". A dataset folder holds only {', '.join(DATASET_FILES)}"
        )  # fmt: skip
    if not (folder / CONTRACT_FILE).is_file():
        raise SettingsError(f"dataset {folder}: {CONTRACT_FILE} is missing (the dataset contract)")
    return Dataset(folder)


def _not_a_dataset_file(name: str) -> str:
    close = difflib.get_close_matches(name, DATASET_FILES, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"'{name}' is not a file the platform reads{hint}"


def dataset_settings(dataset: Dataset) -> dict[str, Any]:
    """The dataset's settings.yaml as an overlay of platform.yaml: only the sections a dataset owns,
    a relative `data_source.path` anchored at the folder (the data travels with its contract)."""
    if dataset.settings is None:
        return {}
    data = read_yaml(dataset.settings)
    unknown = [key for key in data if key not in DATASET_SETTINGS_SECTIONS]
    if unknown:
        raise SettingsError(
            f"{dataset.settings}: "
            + "; ".join(
                f"{key}: not a section a dataset sets (one of "
                f"{', '.join(DATASET_SETTINGS_SECTIONS)})"
                for key in unknown
            )
        )
    for section in ("data_source", "outcomes"):
        source = data.get(section)
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            data = {
                **data,
                section: {**source, "path": absolute_local(source["path"], dataset.folder)},
            }
    return data
