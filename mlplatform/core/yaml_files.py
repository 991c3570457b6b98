"""YAML read as written: a mapping that names one key twice is refused (PyYAML's `safe_load` keeps
the last one silently, so a second `max_rate: 1.0` would quietly switch a gate off)."""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping in the file names the same key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if key in seen:
                raise DuplicateKeyError(
                    problem=f"key '{key}' appears twice (lines {seen[key].line + 1} and "
                    f"{key_node.start_mark.line + 1})",
                    problem_mark=key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """`yaml.safe_load`, refusing duplicate keys; errors are `yaml.YAMLError` with the line."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


def describe_yaml_error(error: yaml.YAMLError) -> str:
    """One line: what is wrong and where (a duplicate key by name, lines included)."""
    if isinstance(error, DuplicateKeyError):
        return str(error.problem)
    return " ".join(str(error).split())
