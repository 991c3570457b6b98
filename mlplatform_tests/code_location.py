"""The definitions loaded for another dataset, in this process: what a code location started with
`MLPLATFORM_DATASET` (and the test's other variables) would load.

The settings, the dataset's contract and its gates are chosen once, when `mlplatform.config.active`
imports (`load_active`), and what depends on them is built from there as the modules import: the
partitions' start and time zone, the feature window's partition mapping (which reaches back the
contract's `label_delay_days` further), the checks' severities, the Launchpad's defaults. A test of
another dataset therefore does not point the session's definitions at other files: it imports the
definitions afresh under that dataset's environment, uses them inside the block, and leaves the
session's own untouched.

```
with definitions_for(MLPLATFORM_DATASET="credit_data") as definitions:
    dg.materialize([*definitions.ASSETS, *definitions.CHECKS], ...)
```
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from mlplatform_tests.conftest import Platform, make_platform, platform_environment

# Shared with the session: they hold nothing chosen at load (the pure core, the settings' models
# and loaders). `mlplatform.config.active` is where the choice is made: loaded per location.
SHARED = ("mlplatform.core", "mlplatform.config")
ACTIVE = "mlplatform.config.active"


def loaded_per_location(name: str) -> bool:
    """Whether a module is imported afresh for each code location: every module of the package
    but the shared ones (and the package itself)."""
    if name == ACTIVE:
        return True
    if name == "mlplatform" or any(name == p or name.startswith(p + ".") for p in SHARED):
        return False
    return name.startswith("mlplatform.")


def shared_modules_importing_per_location() -> list[str]:
    """`module: imported` for each import, when a shared module loads, of a module loaded per
    location: a shared module must hold nothing chosen at load (an import inside a function is
    resolved when it runs, so inside the block it finds the location's module)."""
    import ast

    package = Path(importlib.import_module("mlplatform").__file__).parent
    found = []
    for prefix in SHARED:
        folder = package.joinpath(*prefix.split(".")[1:])
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(package.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if loaded_per_location(name):
                continue
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.Import):
                    imported = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    # `from package import module` imports the module; a dunder is a value.
                    names = [a.name for a in node.names if not a.name.startswith("__")]
                    imported = [node.module, *(f"{node.module}.{name}" for name in names)]
                else:
                    continue
                found += [f"{name}: {m}" for m in imported if loaded_per_location(m)]
    return found


@contextmanager
def definitions_for(**environ: str) -> Iterator[ModuleType]:
    """`mlplatform.definitions` as loaded with `environ` over this process's environment. Inside
    the block the package's modules are that location's (a lazy import in a step finds them, not
    the session's), and `environ` is set; after it, the session's modules and environment are back
    (modules of the test package first imported inside the block are dropped with it)."""
    before = set(sys.modules)
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if loaded_per_location(name)}
    saved_environ = dict(os.environ)
    os.environ.update(environ)
    try:
        yield importlib.import_module("mlplatform.definitions")
    finally:
        dropped = [
            name
            for name in sys.modules
            if loaded_per_location(name)
            or (name.startswith("mlplatform_tests.") and name not in before)
        ]
        for name in dropped:
            del sys.modules[name]
        sys.modules.update(saved)
        _restore_parent_attributes(dropped, saved)
        os.environ.clear()
        os.environ.update(saved_environ)


def _restore_parent_attributes(dropped: list[str], saved: dict[str, ModuleType]) -> None:
    """A submodule's import sets it as an attribute of its package: the shared packages (e.g.
    `mlplatform.config.active`) name the session's modules again, or none."""
    for name in dropped:
        parent_name, _, attribute = name.rpartition(".")
        parent = sys.modules.get(parent_name)
        if parent is None or parent_name in dropped:
            continue
        if name in saved:
            setattr(parent, attribute, saved[name])
        elif getattr(parent, attribute, None) is not None:
            delattr(parent, attribute)


@contextmanager
def platform_for(
    root: Path, rows_per_day: int = 50000, **environ: str
) -> Iterator[tuple[Platform, ModuleType]]:
    """A platform on temporary folders (`make_platform`) and the definitions loaded for the same
    environment: for a test of another dataset."""
    with definitions_for(**platform_environment(root), **environ) as definitions:
        yield make_platform(root, rows_per_day, **environ), definitions
