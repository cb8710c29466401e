"""The typed parameter object: generated from the registry, current, frozen and complete."""

import dataclasses
import typing
from pathlib import Path

import pytest

from isk_defection.model import parameters
from isk_defection.model.parameters import PARAMETERS, Params, params_class_source, resolve
from isk_defection.model.policy import Schedule


def test_committed_params_class_is_current():
    # `make params` regenerates it; a registry change without it fails here
    source = Path(parameters.__file__).read_text()
    assert params_class_source() in source, "Params is stale: run `make params`"


def test_params_fields_follow_the_registry_with_their_types():
    hints = typing.get_type_hints(Params)
    assert [f.name for f in dataclasses.fields(Params)] == list(PARAMETERS)
    for name, entry in PARAMETERS.items():
        if entry.choices:
            assert typing.get_args(hints[name]) == entry.choices
        else:
            assert hints[name] is entry.kind, name
    assert hints["population"] is int and hints["womens_rights"] is Schedule


def test_params_are_frozen_and_refuse_unknown_names():
    p = resolve({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.population = 10  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.populaton  # type: ignore[attr-defined]  # noqa: B018


def test_trait_source_citation_is_whole():
    # it was a two-line string without parentheses: the second line never ran
    source = PARAMETERS["haqqani_ttp_affinity"].source
    assert source.endswith("Al-Qaeda via the Haqqanis); level assumption")
    assert source in parameters.markdown_table()  # the ODD table carries it whole
