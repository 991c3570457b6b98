import pytest

from mlplatform.core.contract import ContractError, load_contract, parse_contract

BASE = {
    "name": "tiny",
    "id": "id",
    "event_time": "ts",
    "target": "y",
    "columns": {
        "id": {"type": "string", "nullable": False},
        "ts": {"type": "datetime", "nullable": False},
        "x": {"type": "float", "min": 0, "max": 1},
        "y": {"type": "integer", "categories": [0, 1]},
    },
}


def test_packaged_contract_parses(card_contract):
    assert card_contract.target == "is_fraud"
    assert "amount" in card_contract.feature_columns
    assert "customer_id" not in card_contract.feature_columns
    assert card_contract.id not in card_contract.feature_columns


def test_unknown_column_type_names_file_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nid: id\nevent_time: ts\ntarget: y\ncolumns:\n"
        "  id: {type: string}\n  ts: {type: datetime}\n  y: {type: integer}\n"
        "  amount: {type: money}\n"
    )
    with pytest.raises(ContractError) as raised:
        load_contract(path)
    message = str(raised.value)
    assert str(path) in message and "columns.amount" in message and "money" in message


def test_target_must_be_a_declared_column():
    data = {**BASE, "target": "label"}
    with pytest.raises(ContractError, match="target: column 'label' is not declared"):
        parse_contract(data, "c.yaml")


def test_domain_feature_needs_its_roles():
    data = {**BASE, "domain_features": ["customer_velocity_1h"]}
    with pytest.raises(ContractError, match="needs roles \\['entity'\\]"):
        parse_contract(data)


def test_unknown_domain_feature_is_named():
    with pytest.raises(ContractError, match="unknown feature 'magic'"):
        parse_contract({**BASE, "domain_features": ["magic"]})


def test_range_only_on_numbers():
    columns = {**BASE["columns"], "c": {"type": "string", "min": 1}}
    with pytest.raises(ContractError, match="columns.c"):
        parse_contract({**BASE, "columns": columns})


def test_unreadable_contract_names_the_file(tmp_path):
    with pytest.raises(ContractError, match="cannot read dataset contract"):
        load_contract(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("target", "label", "expected"),
    [
        ({"type": "integer", "categories": [0, 1]}, "yes", "not one of the categories"),
        ({"type": "category", "categories": ["good", "bad"]}, "Bad", "not one of the categories"),
        ({"type": "boolean"}, 1, "boolean: true or false"),
        ({"type": "integer", "min": 0, "max": 1}, 2, "outside the range"),
        ({"type": "integer"}, 1.0, "holds an integer"),
        ({"type": "float"}, "high", "holds a number"),
    ],
)
def test_a_positive_label_the_target_cannot_hold_is_refused_naming_the_file(
    tmp_path, target, label, expected
):
    """Such a label matches no row: it used to show only later, as a label rate of 0."""
    import yaml

    path = tmp_path / "contract.yaml"
    columns = {**BASE["columns"], "y": target}
    path.write_text(yaml.safe_dump({**BASE, "columns": columns, "positive_label": label}))
    with pytest.raises(ContractError) as refused:
        load_contract(path)
    message = str(refused.value)
    assert str(path) in message and "positive_label" in message and expected in message


@pytest.mark.parametrize(
    ("target", "label"),
    [
        ({"type": "integer", "categories": [0, 1]}, "1"),
        ({"type": "category", "categories": ["good", "bad"]}, "bad"),
        ({"type": "boolean"}, True),
        ({"type": "integer", "min": 0, "max": 1}, 1),
        ({"type": "string"}, "fraud"),
    ],
)
def test_a_positive_label_the_target_can_hold_is_kept(target, label):
    contract = parse_contract({**BASE, "columns": {**BASE["columns"], "y": target},
                               "positive_label": label})  # fmt: skip
    assert contract.positive_label == label
