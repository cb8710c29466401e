"""The posterior ensemble interface: what the calibration writes and robust analyses read."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from isk_defection.experiments.ensemble import (
    DEFAULTS_LABEL,
    defaults_ensemble,
    draw,
    load_ensemble,
    load_posterior,
    model_source,
    sidecar_path,
    write_ensemble,
)
from isk_defection.model.parameters import PARAMETERS

# two numeric parameters that exist before and after model v2
P1, P2 = "legitimacy_strength", "isk_size"


def _table(n: int = 5) -> pd.DataFrame:
    weights = np.arange(1, n + 1, dtype=float)
    return pd.DataFrame(
        {
            "draw": np.arange(n),
            "weight": weights / weights.sum(),
            P1: np.linspace(0.1, 0.5, n),
            P2: np.arange(n) * 100 + 1_000,
        }
    )


def _write(tmp_path, table=None, **meta):
    path = tmp_path / "posterior.parquet"
    write_ensemble(
        table if table is not None else _table(),
        path,
        model_version=meta.pop("model_version", "0.1.0"),
        fitted_to=meta.pop("fitted_to", ["isk_2023", "attacks_2022"]),
        **meta,
    )
    return path


def test_round_trip_keeps_draws_weights_and_sidecar(tmp_path):
    path = _write(tmp_path, method="ABC-SMC")
    ensemble = load_ensemble(path)
    assert not ensemble.is_defaults
    assert ensemble.parameters == [P1, P2]
    assert ensemble.table["weight"].sum() == pytest.approx(1.0)
    assert ensemble.table[P2].tolist() == [1_000, 1_100, 1_200, 1_300, 1_400]
    assert ensemble.meta["method"] == "ABC-SMC"
    assert ensemble.meta["fitted_to"] == ["isk_2023", "attacks_2022"]
    assert "posterior.parquet" in ensemble.label and "5 draws" in ensemble.label
    assert set(ensemble.varying()) == {P1, P2}


def test_draw_is_seeded_and_follows_the_weights(tmp_path):
    table = _table(3)
    table["weight"] = [0.0, 0.25, 0.75]
    ensemble = load_ensemble(_write(tmp_path, table))
    first = draw(ensemble, 400, np.random.default_rng(7))
    again = draw(ensemble, 400, np.random.default_rng(7))
    assert first == again
    ids = np.array([d.draw for d in first])
    assert 0 not in ids  # weight 0 is never drawn
    assert np.mean(ids == 2) == pytest.approx(0.75, abs=0.07)
    assert all(d.params[P1] == table.loc[d.draw, P1] for d in first)
    assert all(isinstance(d.params[P2], int) for d in first)  # plain Python values


def test_defaults_ensemble_is_labelled_and_gives_the_defaults():
    ensemble = defaults_ensemble()
    assert ensemble.is_defaults and ensemble.label == DEFAULTS_LABEL
    assert "no posterior given" in ensemble.label
    draws = draw(ensemble, 3, np.random.default_rng(0))
    assert [d.params for d in draws] == [{}, {}, {}]
    assert ensemble.varying() == []


def _corrupt(tmp_path, change):
    path = _write(tmp_path)
    table = pd.read_parquet(path)
    meta = json.loads(sidecar_path(path).read_text())
    table, meta = change(table, meta)
    table.to_parquet(path, index=False)
    if meta is None:
        sidecar_path(path).unlink()
    else:
        sidecar_path(path).write_text(json.dumps(meta))
    return path


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda t, m: (t.drop(columns="weight"), m), "weight"),
        (lambda t, m: (t.drop(columns="draw"), m), "draw"),
        (lambda t, m: (t.assign(weight=t.weight * 2), m), "weight"),
        (lambda t, m: (t.assign(weight=-t.weight), m), "weight"),
        (lambda t, m: (t.assign(draw=0), m), "draw"),
        (lambda t, m: (t.assign(draw=t.draw + 0.5), m), "draw"),
        (lambda t, m: (t.assign(no_such_parameter=1.0), m), "no_such_parameter"),
        (lambda t, m: (t.assign(counter_isk=0.5), m), "counter_isk"),
        (lambda t, m: (t.assign(**{P1: 99.0}), m), P1),
        (lambda t, m: (t.assign(**{P1: np.nan}), m), P1),
        (lambda t, m: (t.iloc[:0], m), "draw"),
        (lambda t, m: (t, None), "sidecar"),
        (lambda t, m: (t, {k: v for k, v in m.items() if k != "created"}), "created"),
        (lambda t, m: (t, m | {"created": "yesterday"}), "created"),
        (lambda t, m: (t, m | {"fitted_to": []}), "fitted_to"),
        (lambda t, m: (t, {k: v for k, v in m.items() if k != "model_version"}), "model_version"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_field(tmp_path, change, field):
    path = _corrupt(tmp_path, change)
    with pytest.raises(ValueError, match=field) as error:
        load_ensemble(path)
    assert "\n" not in str(error.value)


def test_not_a_parquet_file_or_missing(tmp_path):
    bogus = tmp_path / "posterior.parquet"
    bogus.write_text("draw,weight\n0,1\n")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        load_ensemble(bogus)
    with pytest.raises(ValueError, match="no such file"):
        load_ensemble(tmp_path / "missing.parquet")


def test_write_refuses_what_load_would_refuse_and_leaves_nothing(tmp_path):
    table = _table().assign(weight=0.5)
    with pytest.raises(ValueError, match="weight"):
        _write(tmp_path, table)
    assert list(tmp_path.iterdir()) == []


def test_integer_parameters_stored_as_floats_are_accepted(tmp_path):
    assert PARAMETERS[P2].kind is int
    path = _write(tmp_path)
    _table().astype({P2: float}).to_parquet(path, index=False)  # as another tool may write it
    ensemble = load_ensemble(path)
    assert all(isinstance(v, int) for v in ensemble.table[P2])


def test_a_posterior_of_another_model_source_is_flagged_when_read(tmp_path, capsys):
    path = _write(tmp_path)
    assert load_ensemble(path).meta["model_source"] == model_source()
    load_posterior(path)
    assert capsys.readouterr().err == ""  # fitted to this very model: nothing to say
    meta = json.loads(sidecar_path(path).read_text())
    sidecar_path(path).write_text(json.dumps(meta | {"model_source": "0123456789abcdef"}))
    ensemble = load_posterior(path)
    err = capsys.readouterr().err
    assert "fitted to another version of the model" in err and "0123456789abcdef" in err
    assert len(ensemble.table) == 5  # a warning, not a refusal: the draws are still usable


def test_the_model_source_changes_with_a_mechanism(tmp_path, monkeypatch):
    import isk_defection.experiments.ensemble as ensemble_module

    for folder in ("model", "agents"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.py").write_text("RATE = 1\n")
    (tmp_path / "experiments").mkdir()
    monkeypatch.setattr(ensemble_module, "__file__", str(tmp_path / "experiments" / "e.py"))
    before = model_source()
    (tmp_path / "experiments" / "cli.py").write_text("changed = True\n")
    assert model_source() == before  # the CLI is not the model
    (tmp_path / "model" / "x.py").write_text("RATE = 2\n")
    assert model_source() != before
