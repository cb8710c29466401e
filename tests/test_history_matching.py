"""History matching: implausibility arithmetic, waves on a toy simulator with a known
region, resume after an interrupted wave, and one small run of the model itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from isk_defection.experiments.calibration import history as hm
from isk_defection.experiments.calibration import patterns as pat
from isk_defection.experiments.calibration.patterns import Pattern
from isk_defection.experiments.spec import run_seed


@dataclass(frozen=True)
class ToyPrior:
    """A uniform prior outside the registry (the machinery needs only name and scipy)."""

    name: str
    low: float = 0.0
    high: float = 1.0

    def scipy(self):
        return stats.uniform(self.low, self.high - self.low)


TOY_PRIORS = tuple(ToyPrior(n) for n in ("x0", "x1", "x2", "x3"))
TRUTH = np.array([0.3, 0.6, 0.4, 0.5])


def toy_mean(x: np.ndarray) -> dict[str, np.ndarray]:
    """Three outputs of four inputs, one wavy (a global emulator needs waves); x3 nudges c."""
    return {
        "a": 100 * (1 + 2 * x[:, 0] + 0.3 * np.sin(8 * x[:, 1])),
        "b": 50 * (1 + x[:, 1] + 0.5 * x[:, 2]),
        "c": 20 * (1 + 2 * x[:, 0] * x[:, 2] + 0.1 * x[:, 3]),
    }


def _band(name: str, value: float, half: float) -> Pattern:
    return Pattern(name, name, lambda runs: runs[name], value - half, value + half, "", "")


TRUE_OUTPUTS = {k: float(v[0]) for k, v in toy_mean(TRUTH[None, :]).items()}
TOY_PATTERNS = tuple(_band(k, v, 0.03 * v) for k, v in TRUE_OUTPUTS.items())


def toy_simulate(points, replicates, seed, folder: Path) -> pd.DataFrame:
    """The toy with 2% multiplicative noise per run; run i's seed as in the sweep engine."""
    x = np.array([[p[n] for n in ("x0", "x1", "x2", "x3")] for p in points])
    means = toy_mean(x)
    rows = []
    for i in range(len(points) * replicates):
        point, replicate = divmod(i, replicates)
        rng = np.random.default_rng(run_seed(seed, i))
        noisy = {k: v[point] * np.exp(0.02 * rng.standard_normal()) for k, v in means.items()}
        rows.append({"run": i, "point": point, "replicate": replicate, "seed": run_seed(seed, i)})
        rows[-1] |= noisy
    return pd.DataFrame(rows)


def _toy(out: Path, simulate=toy_simulate, waves_max: int = 3):
    return hm.history_match(
        out,
        seed=7,
        waves_max=waves_max,
        points_per_wave=30,
        seeds_per_point=2,
        simulations=5_000,
        posterior_points=150,
        posterior_accepted=30,
        priors=TOY_PRIORS,
        patterns=TOY_PATTERNS,
        simulate=simulate,
        volume_sample=4_000,
        rank=1,  # three outputs: cut on the largest
        progress=True,  # the wave lines
    )


def test_implausibility_matches_hand_worked_values():
    # identity scale (band below 0): [-1, 3], half-width 2, sd_band 1, sd_disc 0.2
    closed = hm.Target.of(Pattern("y", "y", lambda r: r["y"], -1.0, 3.0, "", ""))
    assert (closed.sd_band, closed.sd_discrepancy) == pytest.approx((1.0, 0.2))
    # |5 - 1| / sqrt(0.96 + 1 + 0.04) = 4 / sqrt(2)
    assert closed.implausibility(np.array([5.0]), np.array([0.96]))[0] == pytest.approx(2.828427)
    # open band [-1, inf), unit 2: target the edge, no band variance, sd_disc 0.1 * 1
    open_ = hm.Target.of(Pattern("y", "y", lambda r: r["y"], -1.0, np.inf, "", "", scale=2.0))
    assert (open_.sd_band, open_.sd_discrepancy) == pytest.approx((0.0, 0.1))
    # (-1 - -3) / sqrt(0.99 + 0.01) = 2; anywhere above the edge: 0
    assert open_.implausibility(np.array([-3.0, 0.0, 50.0]), np.full(3, 0.99)) == pytest.approx(
        [2.0, 0.0, 0.0]
    )


def test_counts_are_emulated_on_the_log_scale_and_a_band_from_zero_is_open_below():
    # [100, 400], width 300: log(v + 30); edges log 130 and log 430
    count = hm.Target.of(Pattern("n", "n", lambda r: r["n"], 100.0, 400.0, "", ""))
    assert (count.low, count.high) == pytest.approx((np.log(130), np.log(430)))
    assert count.sd_band == pytest.approx((np.log(430) - np.log(130)) / 4)
    ttp = hm.Target.of(next(p for p in pat.CONSTRAINING if p.name == "ttp_loyal"))
    assert ttp.low == -np.inf and np.isfinite(ttp.high)
    assert ttp.implausibility(ttp.transform(np.array([0.0, 0.03])), np.zeros(2)) == pytest.approx(
        [0.0, 0.0]
    )
    # an open band's huge values (a ratio over a near-zero rate) are clipped past its edge
    ratio = hm.Target.of(next(p for p in pat.CONSTRAINING if p.name == "former_ratio"))
    assert ratio.transform(np.array([1e9]))[0] == pytest.approx(
        ratio.transform(np.array([11.0]))[0]
    )
    assert np.isnan(count.transform(np.array([np.nan]))[0])


def test_the_cut_is_on_the_second_largest_implausibility():
    values = np.array([[5.0, 2.9, 1.0], [5.0, 3.5, 0.0]])
    assert list(hm.ranked(values, 2) <= hm.CUT) == [True, False]
    assert list(hm.ranked(values, 1) <= hm.CUT) == [False, False]
    assert list(hm.ranked(values[:, :1], 2)) == [0.0, 0.0]  # one output: nothing to rank


def test_waves_shrink_the_volume_keep_the_true_region_and_the_posterior_meets_the_bands(
    tmp_path,
):
    result = _toy(tmp_path / "hm")
    volumes = [w["volume"] for w in result.waves]
    assert len(volumes) >= 2
    assert volumes[0] < 0.5 and volumes[-1] < volumes[0]
    assert all(b <= a for a, b in zip(volumes, volumes[1:], strict=False))
    # the region where the noise-free toy meets every band, found by brute force
    x = np.random.default_rng(0).random((20_000, 4))
    inside = np.ones(len(x), bool)
    for p in TOY_PATTERNS:
        inside &= (p.low <= toy_mean(x)[p.name]) & (toy_mean(x)[p.name] <= p.high)
    truth = pd.DataFrame(np.vstack([TRUTH, x[inside]]), columns=["x0", "x1", "x2", "x3"])
    kept = result.non_implausible(truth)
    assert kept[0] and kept[1:].mean() >= 0.95
    # the final region is much smaller than the prior yet holds the true region
    assert result.waves[-1]["volume"] < 10 * inside.mean() + 0.05
    assert len(result.posterior) > 0 and result.attainable == [p.name for p in TOY_PATTERNS]
    assert (pat.misses(result.posterior, TOY_PATTERNS) == 0).all()
    # rejection inside the region accepts far more often than the prior would
    posterior = pd.read_parquet(tmp_path / "hm" / "posterior_runs.parquet")
    assert posterior["accepted"].mean() > 5 * inside.mean()
    assert posterior["accepted"].sum() >= 30 and posterior["seed"].nunique() == len(posterior)
    # every wave's emulators validate on this smooth toy
    first = result.waves[0]["validation"]
    assert all(v["within_3"] >= 0.9 for v in first.values())


def test_a_calibration_killed_in_a_wave_resumes_with_identical_files(tmp_path):
    whole = _toy(tmp_path / "whole", waves_max=2)

    def dies_in_wave_two(points, replicates, seed, folder):
        if folder.parent.name == "wave-02":
            raise KeyboardInterrupt
        return toy_simulate(points, replicates, seed, folder)

    with pytest.raises(KeyboardInterrupt):
        _toy(tmp_path / "resumed", simulate=dies_in_wave_two, waves_max=2)
    assert (tmp_path / "resumed" / "wave-02" / "design.parquet").exists()
    assert not (tmp_path / "resumed" / "wave-02" / "wave.json").exists()
    resumed = _toy(tmp_path / "resumed", waves_max=2)
    files = sorted(p.relative_to(tmp_path / "whole") for p in (tmp_path / "whole").rglob("*.*"))
    assert files == sorted(
        p.relative_to(tmp_path / "resumed") for p in (tmp_path / "resumed").rglob("*.*")
    )
    for name in files:
        assert (tmp_path / "whole" / name).read_bytes() == (
            tmp_path / "resumed" / name
        ).read_bytes(), name
    assert resumed.posterior.equals(whole.posterior)
    with pytest.raises(ValueError, match="--out"):
        _toy(tmp_path / "resumed", waves_max=3)


def test_a_band_no_run_meets_with_the_others_is_reported_with_its_trade_off():
    patterns = (
        _band("a", 10, 1),  # met only where b is missed
        _band("b", 20, 1),
        _band("c", 30, 1),
    )
    values = pd.DataFrame(
        {
            "a": [10.0, 13.0, 13.0, 14.0],
            "b": [25.0, 20.0, 20.0, 20.0],
            "c": [30.0, 30.0, 30.0, 30.0],
        }
    )
    kept, findings = hm.attainability(values, patterns)
    assert kept == ["b", "c"]
    (finding,) = findings
    assert finding["pattern"] == "a" and finding["best_value"] == 13.0
    assert finding["best_miss"] == pytest.approx(1.0)  # 2 past the edge, band width 2
    assert finding["trades_off_against"] == "b"
    assert finding["share_of_its_runs_meeting_that"] == 0.0


def test_the_model_runs_through_the_sweep_engine_and_each_run_is_the_model_run(tmp_path):
    from isk_defection.experiments.calibration.abc import simulate_patterns
    from isk_defection.experiments.calibration.priors import PRIORS

    result = hm.history_match(
        tmp_path / "model",
        seed=3,
        waves_max=1,
        points_per_wave=6,
        seeds_per_point=2,
        simulations=16,  # one posterior batch
        posterior_points=4,
        simulate=hm.SweepSimulator(population=300, workers=1),
        volume_sample=2_000,
    )
    runs = pd.read_parquet(tmp_path / "model" / "wave-01" / "runs.parquet")
    design = pd.read_parquet(tmp_path / "model" / "wave-01" / "design.parquet")
    assert list(design.columns) == list(PRIORS) and len(runs) == 12
    assert runs["seed"].nunique() == 12
    assert result.waves[0]["simulations_total"] == 12
    assert set(result.waves[0]["validation"]) == {p.name for p in pat.CONSTRAINING}
    # a run's statistics are those of the model run at that point and seed
    row = runs.iloc[5]
    values = hm.Space(tuple(PRIORS.values())).points(design.to_numpy(float))[int(row["point"])]
    for name, prior in PRIORS.items():
        assert prior.low <= values[name] <= prior.high
    direct = simulate_patterns(values, seed=int(row["seed"]), agents=300)
    for p in pat.CONSTRAINING:
        assert row[p.name] == pytest.approx(direct[p.name], nan_ok=True)


# ---- emulators that scale: hyperparameters on a subsample, conditioned on every point ----
def _known(x: np.ndarray) -> np.ndarray:
    """A smooth function of 5 inputs, one of them inert, with an interaction."""
    return np.sin(3 * x[:, 0]) + 2 * x[:, 1] ** 2 + x[:, 2] * x[:, 3]


def test_an_emulator_fitted_on_a_subsample_and_conditioned_on_all_points_learns_a_known_function():
    rng = np.random.default_rng(11)
    x = rng.random((900, 5))
    y = _known(x) + 0.01 * rng.standard_normal(len(x))
    emulator = hm.Emulator.fit("f", x, y, var_seed=1e-4, seed=5)
    # the hyperparameters are those of a fit to the seeded subsample of FIT_POINTS alone
    sub = hm.subsample(len(x), hm.FIT_POINTS, 5)
    assert len(sub) == hm.FIT_POINTS == len(np.unique(sub))
    alone = hm.Emulator.fit("f", x[sub], y[sub], var_seed=1e-4, seed=5)
    assert emulator.theta == pytest.approx(alone.theta)
    # ... but the process is conditioned on all 900 points, which predicts better
    assert len(emulator.gp.X_train_) == 900
    fresh = rng.random((2_000, 5))
    truth = _known(fresh)
    mean, var = emulator.predict(fresh)
    rmse, rmse_sub = (np.sqrt(np.mean((m - truth) ** 2)) for m in (mean, alone.predict(fresh)[0]))
    assert rmse < 0.05 * np.std(truth) and rmse < 0.8 * rmse_sub
    # the same mean and variance as scikit-learn's predict (less the white noise)
    sk_mean, sk_sd = emulator.gp.predict(fresh[:500], return_std=True)
    assert mean[:500] == pytest.approx(sk_mean, abs=1e-7)  # outputs of order 1
    assert var[:500] == pytest.approx(np.maximum(sk_sd**2 - emulator.noise, 0), abs=1e-12)
    # its stated variance is honest: standardized errors mostly within 3
    z = (truth - mean) / np.sqrt(var + emulator.noise)
    assert np.mean(np.abs(z) <= 3) >= 0.9
    # the inert input gets a long length scale, the active ones short
    scales = emulator.gp.kernel_.k1.k2.length_scale
    assert scales[4] > 3 * max(scales[:2])
    # k-fold validation keeps working at this size, and the emulator passes it
    validation = emulator.validate(x, y, seed=5)
    assert validation["points"] == 900 and validation["rmse_over_sd"] < 0.1 and emulator.usable
    # rebuilt from its stored hyperparameters (a resume) it predicts identically
    rebuilt = hm.Emulator.fit("f", x, y, var_seed=1e-4, seed=5, theta=emulator.theta)
    assert np.array_equal(rebuilt.predict(fresh)[0], mean)


def test_a_small_wave_conditions_on_every_point_with_hyperparameters_fitted_on_all():
    rng = np.random.default_rng(12)
    x = rng.random((40, 3))
    y = x[:, 0] + x[:, 1]
    assert list(hm.subsample(40, hm.FIT_POINTS, 1)) == list(range(40))
    assert len(hm.Emulator.fit("f", x, y, 0.0, seed=1).gp.X_train_) == 40


def test_predictions_in_blocks_equal_one_block_and_the_cut_shortcut_equals_the_ranking(
    monkeypatch,
):
    rng = np.random.default_rng(13)
    x = rng.random((60, 4))
    means = toy_mean(x)
    targets = {p.name: hm.Target.of(p) for p in TOY_PATTERNS}
    emulators = {}
    for i, (name, target) in enumerate(targets.items()):
        y = target.transform(means[name])
        emulators[name] = hm.Emulator.fit(name, x, y, var_seed=1e-4, seed=i)
        emulators[name].validate(x, y, seed=i)
    wave = hm.Wave(1, emulators, targets)
    points = rng.random((3_000, 4))
    whole = emulators["a"].predict(points)
    monkeypatch.setattr(hm, "PREDICT_ENTRIES", 60 * 70)  # blocks of 70 rows
    assert len(emulators["a"]._blocks(points)) == -(-3_000 // 70)
    blocked = emulators["a"].predict(points)
    assert np.allclose(blocked[0], whole[0]) and np.allclose(blocked[1], whole[1])
    assert np.allclose(emulators["a"].mean(points), whole[0])
    implausibility = wave.implausibility(points).to_numpy()
    for rank in (1, 2, 3):
        for cut in np.quantile(hm.ranked(implausibility, rank), [0.2, 0.7]):
            expected = hm.ranked(implausibility, rank) <= cut
            assert 0 < expected.sum() < len(points)
            assert np.array_equal(wave.keeps(points, cut, rank), expected), (rank, cut)


def test_the_fast_likelihood_equals_scikit_learns_value_and_gradient():
    from sklearn.gaussian_process import GaussianProcessRegressor

    rng = np.random.default_rng(14)
    x = rng.random((80, 6))
    y = np.sin(4 * x[:, 0]) + x[:, 1] + 0.05 * rng.standard_normal(80)
    base = hm.kernel(6)
    gp = GaussianProcessRegressor(base, normalize_y=True, optimizer=None).fit(x, y)
    normalised = (y - y.mean()) / y.std()
    for _ in range(4):
        theta = base.theta + rng.normal(0, 1, len(base.theta))
        value, gradient = hm.log_likelihood(theta, x, normalised)
        expected, expected_gradient = gp.log_marginal_likelihood(theta, eval_gradient=True)
        assert value == pytest.approx(expected, rel=1e-9)
        assert gradient == pytest.approx(expected_gradient, rel=1e-6, abs=1e-6)
    # and its optimum is scikit-learn's (same L-BFGS-B from the same start)
    fitted = GaussianProcessRegressor(base, normalize_y=True).fit(x, y)
    assert hm.fit_theta(base, x, y) == pytest.approx(fitted.kernel_.theta, abs=1e-3)


def test_outcomes_measured_over_a_whole_sweep_equal_those_measured_run_by_run():
    rng = np.random.default_rng(15)
    weeks = np.arange(pat.STEPS)
    frame = pd.concat(
        [
            pd.DataFrame({c: rng.random(len(weeks)) * 100 for c in pat.COLUMNS}).assign(
                run=run, step=weeks, point=run // 2, replicate=run % 2, seed=1_000 + run
            )
            for run in range(5)
        ],
        ignore_index=True,
    )
    frame.loc[rng.random(len(frame)) < 0.02, pat.COLUMNS[0]] = np.nan  # a missing value
    shuffled = frame.sample(frac=1.0, random_state=3)  # rows in any order
    measured = hm.measure_runs(shuffled, ["run", "point", "replicate", "seed"])
    assert list(measured["run"]) == list(range(5)) and list(measured["seed"]) == [
        1_000 + r for r in range(5)
    ]
    for run, rows in frame.groupby("run"):
        expected = pat.measure(rows)
        for name, value in expected.items():
            assert measured.loc[run, name] == value, (run, name)
