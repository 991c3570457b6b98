"""The package's shape (issues 27.3, 27.4): no module of mlplatform/ over 500 lines, and no import
circle among its modules, whether the imports sit at the top of a module, inside a function or
under `if TYPE_CHECKING:`, and counting the commands `mlplatform COMMAND` loads by name (cli.py
imports each module of the command table). A day is one type: a date in `core/`, turned from
and into Dagster's partition-key text in one module."""

import ast
from pathlib import Path

import mlplatform
from mlplatform.commands.table import COMMANDS

PACKAGE = Path(mlplatform.__file__).parent
MAX_LINES = 500


def modules() -> dict[str, Path]:
    """Every module of the package by its dotted name (a package by its own name)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported(name: str, known: dict[str, Path]) -> str | None:
    """The package module an imported name lives in (`a.b.c` -> `a.b` when c is no module)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules `module` imports anywhere in its text: `import x`, `from x import y`
    (y itself when it is a module), relative imports, and `importlib.import_module("x")`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(_imported(alias.name, known) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, *([base] if base else [])])
            for alias in node.names:
                whole = f"{base}.{alias.name}"
                found.add(whole if whole in known else _imported(base, known))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(_imported(node.args[0].value, known))
    return {name for name in found if name and name != module}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {module: imports_of(module, path, known) for module, path in known.items()}
    # cli.py imports a command's module by the name the table gives it.
    graph["mlplatform.cli"] |= {module for module, _ in COMMANDS.values()}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(graph.get(module, ())):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_graph_sees_imports_inside_functions_and_the_commands_loaded_by_name():
    graph = import_graph()
    # A function-level import (the checklist reads the command table when it runs).
    assert "mlplatform.commands.table" in graph["mlplatform.reporting.acceptance"]
    assert "mlplatform.reporting.acceptance" in graph["mlplatform.cli"]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_in_the_package():
    graph = import_graph()
    found = circles(graph)
    described = [
        "; ".join(f"{m} -> {', '.join(sorted(graph[m] & set(group)))}" for m in group)
        for group in found
    ]
    assert not found, "import circles:\n" + "\n".join(described)


def test_no_module_over_500_lines():
    long = {
        str(path.relative_to(PACKAGE.parent)): lines
        for path in modules().values()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


def _is_day(name: str) -> bool:
    """`day`, `arrival_day`, `days`, `known_before`: a count of days (`window_days`) is not one."""
    return name in {"day", "days"} or name.endswith(("_day", "known_before"))


def test_every_day_reaching_the_core_is_a_date():
    """A parameter of a `core/` function that names a day (`day`, `arrival_day`, `known_before`,
    `days`...) is annotated with `dt.date`, never with text, so no core function parses a day."""
    wrong = []
    for module, path in modules().items():
        if not module.startswith("mlplatform.core"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            for argument in arguments:
                if not _is_day(argument.arg):
                    continue
                annotation = ast.unparse(argument.annotation) if argument.annotation else ""
                # A column of days (a Series) is data, in the data's own type.
                if ("date" not in annotation or "str" in annotation) and "Series" not in annotation:
                    wrong.append(f"{module}.{node.name}({argument.arg}: {annotation or '?'})")
    assert not wrong, "\n".join(wrong)


def test_partition_keys_become_days_in_one_module():
    """`date.fromisoformat` on a partition key happens in `stages/definition.py` only; the other
    stages, checks and sensors call `partition_day`/`day_of_partition_key` from there."""
    parsing = [
        module
        for module, path in modules().items()
        if not module.startswith(("mlplatform.core", "mlplatform.config"))
        and module != "mlplatform.stages.definition"
        and "fromisoformat" in path.read_text()
    ]
    assert parsing == [], parsing
