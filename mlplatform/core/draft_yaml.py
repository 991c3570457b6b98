"""The draft written as the dataset folder's three files (contract.yaml, quality_gates.yaml,
settings.yaml), each value that came from the sample commented with where it came from, and each
file read back with the project's strict reader to be sure it says what was drafted.

ruamel.yaml writes the files, keeping each comment beside its key. They are read by PyYAML, whose
YAML 1.1 takes `no` and `on` for booleans and `1e-05` for text, so they are written as YAML 1.1:
such words quoted, such numbers `1.0e-05`.
"""

import io
import textwrap
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

from mlplatform.core.drafting import Draft
from mlplatform.core.yaml_files import parse_yaml

# Comment lines wrap to this width, their indent and `# ` included.
COMMENT_WIDTH = 98


def _flow(values: dict[str, Any]) -> CommentedMap:
    """A mapping written on one line: `{type: float, nullable: false}`."""
    mapping = CommentedMap(values)
    mapping.fa.set_flow_style()
    return mapping


def _wrapped(text: str, indent: int = 0) -> str:
    return "\n".join(textwrap.wrap(text, COMMENT_WIDTH - indent - 2, break_on_hyphens=False))


def _comment_after(mapping: CommentedMap, key: str, text: str) -> None:
    """`key: value  # text`. ruamel's `yaml_add_eol_comment` puts two spaces before the first
    such comment of a mapping and one before the others; this token gives each two."""
    mapping._yaml_add_eol_comment([CommentToken(f" # {text}", CommentMark(0)), None], key=key)


def _comment_before(mapping: CommentedMap, key: str, text: str, indent: int = 0) -> None:
    mapping.yaml_set_comment_before_after_key(key, before=_wrapped(text, indent), indent=indent)


def _dumped(data: CommentedMap) -> str:
    writer = YAML()  # round trip: the comments are written where they were set
    writer.version = (1, 1)
    writer.width = 4096  # one value, one line: a long list of categories is not folded
    stream = io.StringIO()
    writer.dump(data, stream)
    # The directive only chose YAML 1.1's quoting; the platform reads YAML 1.1 anyway.
    return stream.getvalue().removeprefix("%YAML 1.1\n---\n")


def contract_yaml(draft: Draft, sample: str) -> str:
    data = CommentedMap(
        (key, draft.contract[key])
        for key in ("name", "description", "id", "event_time", "target", "positive_label")
    )
    data.yaml_set_start_comment(
        _wrapped(
            f"Dataset contract drafted by `mlplatform dataset init` from {sample} "
            f"({draft.facts['rows']} rows, {draft.facts['first_day']} to "
            f"{draft.facts['last_day']}). Types, nullability, ranges and categories describe "
            "that sample: review each line, widen ranges to what is possible, and confirm the "
            "lines marked CONFIRM."
        )
    )
    _comment_after(data, "id", draft.id.comment("id"))
    _comment_after(data, "event_time", draft.event_time.comment("event time"))
    _comment_after(data, "target", draft.target.comment("target"))
    _comment_after(data, "positive_label", draft.positive_label_note)
    columns = CommentedMap()
    for column, drafted in draft.columns.items():
        columns[column] = _flow(drafted.spec)
        if drafted.note:
            _comment_after(columns, column, drafted.note)
    data["columns"] = columns
    return _dumped(data)


def _commented(data: dict[str, Any], notes: dict[str, str], path: str = "") -> CommentedMap:
    """Nested sections in blocks, a section of plain values on one line, and the note of each
    dotted key (`raw_transactions.fresh`) above it."""
    mapping = CommentedMap()
    for key, value in data.items():
        dotted = f"{path}.{key}" if path else key
        if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
            mapping[key] = _commented(value, notes, dotted)
        elif isinstance(value, dict):
            mapping[key] = _flow(value)
        else:
            mapping[key] = value
        if dotted in notes:
            _comment_before(mapping, key, notes[dotted], 2 * dotted.count("."))
    return mapping


def gates_yaml(draft: Draft, sample: str) -> str:
    data = _commented(draft.gates, draft.gate_notes)
    data.yaml_set_start_comment(
        _wrapped(
            f"Quality gates of {draft.name} that differ from the packaged ones "
            "(mlplatform/config/quality_gates.yaml lists every key), drafted by `mlplatform "
            f"dataset init` from {sample}: the bands come from the sample's own figures, shown "
            "above each."
        )
    )
    return _dumped(data)


def settings_data(draft: Draft, sample_path: str, file_format: str) -> dict[str, Any]:
    """The dataset's settings.yaml: the drafted sections, and the sample itself as the source."""
    return {
        **draft.settings,
        "data_source": {"kind": "files", "path": sample_path, "file_format": file_format},
    }


def settings_yaml(draft: Draft, sample_path: str, file_format: str) -> str:
    notes = {
        "partitions": (
            f"The sample's first day: partitions start here (the sample runs from "
            f"{draft.facts['first_day']} to {draft.facts['last_day']}). Event times without an "
            f"offset are read as UTC; days are cut in the time zone below."
        ),
        "data_source": (
            "The sample itself, for a first run: point `path` at where the data arrives (a "
            "file, a folder or a glob; local or an fsspec URL; a relative path is relative to "
            "this folder)."
        ),
    }
    for section, remark in draft.settings_notes.items():
        notes[section] = f"{notes.get(section, '')} {remark}".strip()
    if "window_note" in draft.facts:
        notes["features"] = draft.facts["window_note"]
    data = CommentedMap()
    for section, values in settings_data(draft, sample_path, file_format).items():
        data[section] = CommentedMap(values)
        if section in notes:
            _comment_before(data, section, notes[section])
    data.yaml_set_start_comment(
        _wrapped(
            f"Settings of {draft.name}, drafted by `mlplatform dataset init`: they override the "
            "same sections of the packaged platform.yaml."
        )
    )
    return _dumped(data)


def reads_back(text: str, expected: dict[str, Any], what: str) -> None:
    """The written YAML must read back, with the project's strict reader, as what was meant."""
    parsed = parse_yaml(text)
    if parsed != expected:
        raise AssertionError(f"{what}: the drafted YAML does not read back as drafted")
