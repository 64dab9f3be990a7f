"""Property tests of the configuration parser: any TOML input gives a valid config or a ConfigError."""

from __future__ import annotations

import dataclasses

import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from microglia.errors import ConfigError
from microglia.training import TrainConfig

FIELD_NAMES = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "extra"]

toml_scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
toml_values = st.recursive(
    toml_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
plausible_values = {
    "hidden": st.lists(st.integers(-2, 300), max_size=3),
    "steps": st.integers(-1, 30),
    "burn_in": st.integers(-1, 30),
    "lr": st.floats(-1.0, 1.0),
    "beta": st.floats(-0.5, 1.5),
    "feedback": st.sampled_from(["exact", "sign", "random", "direct", "mirror", ""]),
    "validation_fraction": st.floats(-0.1, 1.0),
    "checkpoint_every": st.integers(-3, 2000),
}


def check_parsed(path) -> None:
    try:
        config = TrainConfig.from_toml(path)
    except ConfigError as error:
        assert str(error), "a ConfigError must carry a message"
        return
    config.validate()
    assert TrainConfig.from_dict(config.to_dict()) == config


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), toml_values, max_size=6))
def test_random_toml_documents(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("config") / "config.toml"
    path.write_text(tomli_w.dumps(document))

    check_parsed(path)


@settings(max_examples=200, deadline=None)
@given(document=st.fixed_dictionaries({}, optional=plausible_values))
def test_plausible_values_round_trip(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("config") / "config.toml"
    path.write_text(tomli_w.dumps(document))

    check_parsed(path)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes_as_config(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("config") / "config.toml"
    path.write_bytes(data)

    check_parsed(path)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"hidden": 5}, "hidden: expected a list of positive layer widths such as [5], got 5"),
        ({"hidden": [True]}, "hidden: expected one or more positive layer widths, got (True,)"),
        ({"dataset": 3}, "dataset: expected a non-empty string, got 3"),
        ({"download": "yes"}, "download: expected true or false, got 'yes'"),
        ({"steps": "ten"}, "steps: expected an integer >= 1, got 'ten'"),
        ({"encoding": ["direct"]}, "encoding: expected one of direct, rate, latency, got ['direct']"),
        ({"out": ""}, "out: expected a non-empty string, got ''"),
    ],
)
def test_wrong_types_name_field(values, message):
    with pytest.raises(ConfigError) as raised:
        TrainConfig.from_dict(values)

    assert str(raised.value) == message
