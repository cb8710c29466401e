"""ABC-SMC of the baseline against the reported patterns (pyabc), and the posterior file.

The likelihood is not available; what is available is a set of bands on statistics of
the baseline run (``patterns``). The distance of a simulation to the data is the
Euclidean norm of its distances *outside* the constraining bands, each in units of its
band width: zero when every band is met. ABC-SMC (Toni et al. 2009; Klinger et al.
2018, pyabc) lowers the tolerance generation by generation (median of the previous
generation's distances); a tolerance of zero is the posterior "prior restricted to the
parameters whose simulated patterns all fall inside their bands". Each particle is one
simulation with its own seed, so the posterior includes the model's stochasticity.

pyabc's multicore sampler uses local processes; ``--scheduler``/``--local-cluster`` use
its Dask sampler on the same cluster as sweeps; its SQLite database
(``results/posterior/abc.db``) records every generation, so ``--resume`` continues an
interrupted calibration from its last finished generation.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import json
import logging
import pickle
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from isk_defection.experiments.calibration import patterns as pat
from isk_defection.experiments.calibration.priors import PRIORS
from isk_defection.experiments.provenance import git_state, package_version
from isk_defection.model import DefectionModel

POPULATION = 2_000  # agents: the model default, at which the v2 defaults were fitted
POSTERIOR = Path("results/posterior/posterior.parquet")
DB = "abc.db"
DEFENSIVE_SHARE = 0.2  # of each generation's proposals drawn from the prior


@dataclass(frozen=True)
class Budget:
    """How big a calibration is: particles per generation and when to stop."""

    particles: int
    generations: int
    simulations: int
    minutes: float
    agents: int = POPULATION


# pyabc checks the wall time and the simulation count only between generations, so the
# generation cap is what bounds a full run: five took 43 minutes here (the fifth alone 17),
# a sixth would take about 30 more.
FULL = Budget(particles=200, generations=5, simulations=12_000, minutes=45)
QUICK = Budget(particles=16, generations=2, simulations=120, minutes=2)


def seed_of(params: dict[str, float]) -> int:
    """A seed derived from the parameter values (so a particle is reproducible)."""
    text = json.dumps({k: round(float(v), 12) for k, v in sorted(params.items())})
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


RECORDED = ("week", *pat.COLUMNS)  # the model columns a calibration run records


def simulate_frame(
    params: dict[str, Any], seed: int, agents: int = POPULATION, preset: str = "baseline"
) -> pd.DataFrame:
    """The weekly model columns the patterns need, for one baseline run of STEPS weeks."""
    frame = _run(params, seed, agents, preset).get_model_vars_dataframe()  # indexed 0, 1, ...
    frame.columns = ["step" if c == "week" else c for c in frame.columns]
    return frame


def simulate_columns(
    params: dict[str, Any], seed: int, agents: int = POPULATION, preset: str = "baseline"
) -> dict[str, np.ndarray]:
    """:func:`simulate_frame` as one array per column (no table: a third of the time)."""
    recorded = _run(params, seed, agents, preset).model_vars
    return {("step" if c == "week" else c): np.asarray(v, float) for c, v in recorded.items()}


def _run(params: dict[str, Any], seed: int, agents: int, preset: str) -> Any:
    """The records of one run that keeps only the columns the patterns read."""
    model = DefectionModel(
        preset=preset,
        rng=seed,
        population=agents,
        collect_agent_data="off",
        columns=RECORDED,
        **params,
    )
    for _ in range(pat.STEPS):
        model.step()
    return model.datacollector


def measure(run: pd.DataFrame | dict[str, np.ndarray]) -> dict[str, float]:
    """Every outcome of one run, as ``patterns.measure`` gives them, from NumPy arrays.

    ``run``: the run's weekly columns (a table, or an array per column) with ``step``.
    ``Outcome.measure`` reads an outcome with a dozen pandas operations, 30 ms a run:
    more than half of the model's own time. Here each outcome is a mask, a weighted sum
    and a reduction over arrays, done as pandas does them (the columns added in their
    order, missing values as 0, infinite ones as missing), so the values are the same
    floats (tests/test_calibration.py). An outcome this does not cover (a rolling sum,
    weeks out of order) is measured by pandas.
    """
    steps = np.asarray(run["step"])
    ordered = bool(np.all(np.diff(steps) > 0))
    arrays: dict[str, np.ndarray] = {}
    values = {}
    for outcome in pat.OUTCOMES:
        if not ordered or outcome.rolling != 1:
            values[outcome.name] = outcome.measure(pd.DataFrame(run))
            continue
        for name in outcome.columns:
            if name not in arrays:
                arrays[name] = np.asarray(run[name], float)
        values[outcome.name] = _measure(outcome, steps, arrays)
    return values


_REDUCE: dict[str, Any] = {
    "final": lambda v: v[-1],
    "peak": np.max,
    "total": np.sum,
    "mean": np.mean,
    "change": lambda v: v[-1] - v[0],
}


def _measure(outcome: Any, steps: np.ndarray, arrays: dict[str, np.ndarray]) -> float:
    """One outcome of one run (weeks in order, no rolling sum): see :func:`measure`."""
    rows: Any = slice(None)
    if outcome.window is not None:
        rows = (steps >= outcome.window[0]) & (steps <= outcome.window[1])
    total = np.zeros(0)
    for k, (name, weight) in enumerate(outcome.columns.items()):
        part = arrays[name][rows] * weight
        part[np.isnan(part)] = 0.0
        total = part if k == 0 else total + part
    if not outcome.add:
        total = total / np.array(list(outcome.columns.values()), float).sum()
    total[np.isinf(total)] = np.nan
    return float(_REDUCE[outcome.how](total))


def simulate_patterns(
    params: dict[str, Any], seed: int | None = None, agents: int = POPULATION
) -> dict[str, float]:
    """Every pattern's statistic for one run at ``params`` (seed from the values if None)."""
    params = {k: float(v) for k, v in params.items()}
    seed = seed_of(params) if seed is None else seed
    return pattern_statistics(measure(simulate_columns(params, seed, agents)))


def pattern_statistics(outcomes: dict[str, float]) -> dict[str, float]:
    """Every pattern's statistic of one run, as ``patterns.pattern_values`` gives them.

    The statistics are written for a table of runs; for one run a pandas table costs
    3 ms, far more than the statistics. They read the run here as one-element NumPy
    columns that divide and clip as pandas' do (the same floats, tested); a statistic
    that needs more of pandas than that is given the table.
    """
    try:
        with np.errstate(all="ignore"):  # as pandas: 0 / 0 is NaN, x / 0 infinite
            run = _OneRun(outcomes)
            return {p.name: float(np.asarray(p.statistic(run))[0]) for p in pat.PATTERNS}
    except (AttributeError, TypeError):
        table = pat.pattern_values(pd.DataFrame([outcomes]))
        return {k: float(v) for k, v in table.iloc[0].items()}


class _Column(np.ndarray):
    """One run's value as a one-element column, with pandas' ``clip(lower=, upper=)``."""

    def clip(self, lower: Any = None, upper: Any = None) -> Any:  # type: ignore[override]
        """Values below ``lower`` (above ``upper``) replaced by it; NaN stays NaN."""
        return np.clip(np.asarray(self), lower, upper).view(_Column)


class _OneRun(dict):
    """One run's outcomes, read by name as a one-row table's columns."""

    def __getitem__(self, name: str) -> _Column:
        return np.array([super().__getitem__(name)], float).view(_Column)


class Simulator:
    """pyabc's model: parameters -> pattern statistics (picklable for processes and Dask)."""

    def __init__(self, agents: int = POPULATION):
        self.agents = agents

    def __call__(self, parameter: dict[str, Any]) -> dict[str, float]:
        """Simulate; a run that fails returns NaNs, which the distance treats as infinite."""
        try:
            return simulate_patterns(dict(parameter), agents=self.agents)
        except Exception:  # noqa: BLE001 - a broken particle is rejected, not fatal
            return {p.name: float("nan") for p in pat.PATTERNS}


@dataclass(frozen=True)
class Bands:
    """The data fitted: a band per constraining pattern (the reported ones, or synthetic)."""

    low: dict[str, float]
    high: dict[str, float]
    unit: dict[str, float]

    @classmethod
    def reported(cls) -> Bands:
        """The reported bands of the constraining patterns."""
        return cls(
            {p.name: p.low for p in pat.CONSTRAINING},
            {p.name: p.high for p in pat.CONSTRAINING},
            {p.name: p.unit for p in pat.CONSTRAINING},
        )

    @classmethod
    def around(cls, values: dict[str, float]) -> Bands:
        """Synthetic data: bands as wide as the reported ones, centred on ``values``.

        Open bands (>= or <=) keep their open side; the coverage check uses these.
        """
        low, high, unit = {}, {}, {}
        for p in pat.CONSTRAINING:
            v, half = values[p.name], p.unit / 2
            low[p.name] = v - half if np.isfinite(p.low) and p.low > 0 else p.low
            high[p.name] = v + half if np.isfinite(p.high) else p.high
            if p.name == "ttp_loyal":
                low[p.name], high[p.name] = 0.0, max(v + half, p.high)
            unit[p.name] = p.unit
        return cls(low, high, unit)

    def observed(self) -> dict[str, float]:
        """What pyabc stores as the observed data: each band's ends."""
        return {f"{k}_low": v for k, v in self.low.items()} | {
            f"{k}_high": (v if np.isfinite(v) else 1e300) for k, v in self.high.items()
        }


class BandDistance:
    """Euclidean norm of the distances outside the bands, in band widths (0 inside)."""

    def __init__(self, bands: Bands):
        self.bands = bands

    def __call__(self, x: dict[str, float], x_0: dict[str, float] | None = None) -> float:
        """Distance of simulated statistics ``x`` to the bands."""
        total = 0.0
        for name, low in self.bands.low.items():
            value = x.get(name, float("nan"))
            if not np.isfinite(value):
                return float("inf")
            high, unit = self.bands.high[name], self.bands.unit[name]
            total += ((max(low - value, 0.0) + max(value - high, 0.0)) / unit) ** 2
        return float(np.sqrt(total))


def pyabc_prior(inferred: list[str]):
    """The priors as a pyabc Distribution of uniform priors (scipy's loc, scale)."""
    import pyabc

    class UniformPriors(pyabc.Distribution):
        """pyabc's Distribution, its density of uniform priors computed without scipy.

        pyabc evaluates the prior density two or three times per proposal, each time one
        scipy call per parameter (about 0.1 ms each: with 25 parameters, more time than
        the rest of pyabc's work on a particle). This is scipy's uniform density itself,
        ``1 / scale`` where ``(x - loc) / scale`` lies in [0, 1], 0 outside, NaN at NaN,
        multiplied in pyabc's order, so the densities (and the weights) are the same
        floats. Draws are pyabc's own (scipy's, from NumPy's global generator).
        """

        def pdf(self, x: Any) -> Any:
            terms: list[Any] = [_uniform_density(self.get(k), v) for k, v in x.items()]
            if len(x) != len(self) or any(t is None for t in terms):
                return super().pdf(x)  # pyabc's own: its check of the names, other priors
            return functools.reduce(lambda s, t: s * t, terms) if terms else 1

    return UniformPriors(
        **{n: pyabc.RV("uniform", PRIORS[n].low, PRIORS[n].high - PRIORS[n].low) for n in inferred}
    )


def _uniform_density(rv: Any, value: Any) -> np.float64 | None:
    """The density ``scipy.stats.uniform(loc, scale).pdf(value)`` of RV("uniform", loc, scale)."""
    if rv is None or rv.name != "uniform" or rv.kwargs or len(rv.args) != 2:
        return None
    loc, scale = (np.float64(a) for a in rv.args)
    if not scale > 0:
        return None
    z = (np.float64(value) - loc) / scale
    if np.isnan(z):
        return np.float64(np.nan)
    return np.float64(1.0) / scale if 0.0 <= z <= 1.0 else np.float64(0.0)


def prior_redraw(names: list[str]):
    """A pyabc transition that ignores the last generation and draws ``names`` from the prior.

    For the parameters the screen found only weakly influential. Their importance weight
    is prior / proposal = 1, so a kernel density in 25 dimensions no longer collapses the
    weights onto a handful of particles (an effective sample size of 7 of 200 before),
    while what the patterns say about them still shows: which draws are accepted.
    """
    import pyabc

    density = 1.0
    for n in names:
        density /= PRIORS[n].width

    class PriorRedraw(pyabc.transition.Transition):
        def fit(self, X: pd.DataFrame, w: np.ndarray) -> None:  # noqa: N803 - pyabc's name
            """Nothing to learn from the population."""

        def rvs_single(self) -> pyabc.Parameter:
            return pyabc.Parameter(
                {n: PRIORS[n].low + np.random.rand() * PRIORS[n].width for n in names}
            )

        def pdf(self, x):
            if isinstance(x, dict | pd.Series):  # one particle (in a worker, per proposal)
                values = [float(x[n]) for n in names]
                within = all(
                    PRIORS[n].low <= v <= PRIORS[n].high for n, v in zip(names, values, strict=True)
                )
                return density if within else 0.0
            inside = np.ones(len(x), bool)
            for n in names:
                column = x[n].to_numpy(float)
                inside &= (column >= PRIORS[n].low) & (column <= PRIORS[n].high)
            return np.where(inside, density, 0.0)

    return PriorRedraw()


def defensive(inner, names: list[str], share: float = DEFENSIVE_SHARE):
    """The proposal ``share`` x prior + (1 - share) x ``inner`` (Hesterberg 1995).

    An importance weight is prior / proposal, so with a share of the prior in the
    proposal no particle can weigh more than 1 / share times the prior's: the weights
    cannot collapse onto the few particles a narrow kernel happens to leave alone.
    """
    import pyabc

    prior = prior_redraw(names)

    class Defensive(pyabc.transition.Transition):
        def fit(self, X: pd.DataFrame, w: np.ndarray) -> None:  # noqa: N803 - pyabc's name
            inner.fit(X, w)
            prior.fit(X, w)

        def rvs_single(self) -> pyabc.Parameter:
            return prior.rvs_single() if np.random.rand() < share else inner.rvs_single()

        def pdf(self, x):
            return share * prior.pdf(x) + (1 - share) * inner.pdf(x)

    return Defensive()


def transitions(inferred: list[str], kernel: list[str]):
    """The proposal: a defensive mixture of the prior and pyabc's kernel density.

    The kernel moves the ``kernel`` parameters; the other inferred ones are redrawn
    from their prior.
    """
    import pyabc

    moved = [n for n in inferred if n in kernel]
    redrawn = [n for n in inferred if n not in kernel]
    if not redrawn:
        inner = pyabc.MultivariateNormalTransition()
    elif not moved:
        inner = prior_redraw(redrawn)
    else:
        inner = pyabc.AggregatedTransition(
            {
                tuple(moved): pyabc.MultivariateNormalTransition(),
                tuple(redrawn): prior_redraw(redrawn),
            }
        )
    return defensive(inner, inferred)


def seeded_sampler(map_: Any, seed: int) -> Any:
    """The mapping sampler of pyabc, particle ``i`` of generation ``t`` seeded from ``seed``.

    pyabc's own samplers reseed every worker from the operating system, so no two
    calibrations agree. Here each particle's proposals and simulations draw from
    ``SeedSequence([seed, t + 1, i])``: a calibration killed and resumed from its last
    finished generation ends with exactly the draws of an uninterrupted one.
    """
    import pyabc
    from cloudpickle import dumps  # pyabc's closures are local classes

    class SeededMappingSampler(pyabc.sampler.MappingSampler):
        def sample_until_n_accepted(self, n, simulate_one, t, **_: Any):
            state = np.random.SeedSequence([seed, t + 1]).generate_state(n + 1)
            np.random.seed(int(state[0]))  # anything pyabc draws in this process
            work = functools.partial(_one_particle, self.sample_factory, dumps(simulate_one))
            results = list(self.map_(work, [int(s) for s in state[1:]]))
            self.nr_evaluations_ = sum(evaluations for _, evaluations in results)
            sample = self._create_empty_sample()
            for part, _ in results:
                sample += part
            return sample

    return SeededMappingSampler(map_=map_)


def _one_particle(factory: Any, simulate_one: bytes, particle_seed: int) -> tuple[Any, int]:
    """One accepted particle (and the rejected ones before it), from its own seed."""
    np.random.seed(particle_seed)
    random.seed(particle_seed)
    simulate = _simulate_function(simulate_one)
    sample, evaluations = factory(), 0
    while True:
        new = simulate()
        evaluations += 1
        sample.append(new)
        if new.accepted:
            return sample, evaluations


_UNPICKLED: tuple[bytes, Any] | None = None  # the last simulate function this process read


def _simulate_function(simulate_one: bytes) -> Any:
    """The generation's simulate function (pyabc's), unpickled once per worker process.

    Unpickling it rebuilds pyabc's local classes and scipy's distributions (about 30 ms,
    most of a particle's cost outside the model), so a worker keeps the last one it read
    and reads again only when the generation's function changes. Reusing it changes no
    draw: it keeps no state between particles, and everything it draws comes from
    NumPy's global generator, reseeded for each particle (:func:`_one_particle`).
    """
    global _UNPICKLED
    if _UNPICKLED is None or _UNPICKLED[0] != simulate_one:
        # our own bytes, from this process's parent
        _UNPICKLED = (simulate_one, pickle.loads(simulate_one))  # noqa: S301
    return _UNPICKLED[1]


@contextlib.contextmanager
def sampler(
    workers: int | None, scheduler: str | None, local_cluster: bool, seed: int | None = None
) -> Iterator[Any]:
    """The pyabc multicore sampler, or its Dask sampler on a scheduler or a LocalCluster.

    With ``seed`` (local processes): the seeded mapping sampler, reproducible and resumable.
    """
    import pyabc

    if seed is not None and not (scheduler or local_cluster):
        from isk_defection.experiments.sweep import LocalPool

        pool = LocalPool(workers or 2)  # survives a worker's death: the particle reruns

        def map_(function: Any, items: list[Any]) -> list[Any]:
            return [future.result() for future in [pool.submit(function, x) for x in items]]

        try:
            yield seeded_sampler(map_, seed)
        finally:
            pool.stop()
        return

    if scheduler or local_cluster:
        from dask.distributed import Client, LocalCluster

        cluster = (
            LocalCluster(n_workers=workers or 2, threads_per_worker=1, dashboard_address=None)
            if local_cluster
            else None
        )
        try:
            client = Client(scheduler or cluster, timeout="10s")
        except (OSError, ValueError, TypeError) as error:
            if cluster is not None:
                cluster.close()
            raise ValueError(f"--scheduler: cannot use {scheduler!r} ({error})") from None
        try:
            yield pyabc.sampler.DaskDistributedSampler(dask_client=client, batch_size=1)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    else:
        yield pyabc.sampler.MulticoreEvalParallelSampler(n_procs=workers or 2)


class Progress(logging.Handler):
    """One line per finished generation: tolerance, acceptance rate, simulations so far."""

    def __init__(self, quiet: bool = False):
        super().__init__(logging.INFO)
        self.quiet = quiet
        self.started = time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        """Print pyabc's generation and stopping messages with the elapsed time."""
        text = record.getMessage()
        keys = ("t: ", "Accepted", "Stop", "Stopping", "acceptance rate", "Calibration")
        if self.quiet or not any(k in text for k in keys):
            return
        print(f"[{(time.perf_counter() - self.started) / 60:5.1f} min] {text}", flush=True)


def calibrate(
    out: Path,
    inferred: list[str],
    budget: Budget,
    *,
    kernel: list[str] | None = None,
    bands: Bands | None = None,
    resume: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    local_cluster: bool = False,
    progress: bool = True,
    seed: int | None = None,
) -> dict[str, Any]:
    """Run (or resume) ABC-SMC into ``out/abc.db``; return the final population and stats.

    ``kernel``: the inferred parameters the SMC kernel moves (default all); the others
    are redrawn from their prior each generation (:func:`transitions`). ``seed``: every
    particle seeded from it (local processes), so a resumed calibration ends where an
    uninterrupted one does; the generations and simulations of ``budget`` bound the
    work, its minutes only as a safety stop (``stopped_by`` says which bound).
    """
    import pyabc

    out.mkdir(parents=True, exist_ok=True)
    db_path = out / DB
    bands = bands or Bands.reported()
    handler = Progress(quiet=not progress)
    loggers = [logging.getLogger(n) for n in ("ABC", "ABC.Sampler", "ABC.History")]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    try:
        with sampler(workers, scheduler, local_cluster, seed) as chosen:
            abc = pyabc.ABCSMC(
                Simulator(budget.agents),
                pyabc_prior(inferred),
                BandDistance(bands),
                population_size=budget.particles,
                transitions=transitions(inferred, inferred if kernel is None else kernel),
                sampler=chosen,
            )
            generations, simulations = budget.generations, budget.simulations
            if resume and db_path.exists():
                history = abc.load(f"sqlite:///{db_path}", 1)
                done, spent = history.max_t + 1, history.total_nr_simulations
                print(f"resuming {db_path}: {done} generations, {spent} simulations so far")
                generations, simulations = generations - done, simulations - spent
            else:
                if db_path.exists():
                    db_path.unlink()
                abc.new(f"sqlite:///{db_path}", bands.observed())
            if generations > 0 and simulations > 0:  # pyabc counts both from where it resumes
                history = abc.run(
                    minimum_epsilon=0.0,
                    max_nr_populations=generations,
                    max_total_nr_simulations=simulations,
                    max_walltime=dt.timedelta(minutes=budget.minutes),
                )
            else:
                print("the budget is spent: writing the outputs of the finished generations")
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    fit = summarise(history, inferred)
    done = len(fit["generations"]) >= budget.generations
    spent = fit["simulations"] >= budget.simulations
    fit["stopped_by"] = "generations" if done else "simulations" if spent else "wall time"
    return fit


def summarise(history, inferred: list[str]) -> dict[str, Any]:
    """The final population (draws and weights) and the run's figures.

    The time is the generations' own (pyabc records each), so a resumed or re-summarised
    run reports the computing time of all its generations.
    """
    frame, weights = history.get_distribution(m=0, t=history.max_t)
    table = frame[inferred].reset_index(drop=True)
    populations = history.get_all_populations()
    seconds = float(populations["wall_time"].sum())
    populations = populations[populations.t >= 0]
    gens = [
        {
            "t": int(r.t),
            "epsilon": float(r.epsilon),
            "simulations": int(r.samples),
            "acceptance": float(history.get_nr_particles_per_population()[int(r.t)] / r.samples)
            if r.samples
            else float("nan"),
        }
        for r in populations.itertuples()
    ]
    total = int(history.total_nr_simulations)
    particles = int(len(table))
    return {
        "table": table,
        "weights": np.asarray(weights, float) / np.sum(weights),
        "generations": gens,
        "simulations": total,
        "acceptance_rate": gens[-1]["acceptance"] if gens else float("nan"),
        "overall_acceptance": particles * len(gens) / total if total else float("nan"),
        "final_epsilon": gens[-1]["epsilon"] if gens else float("nan"),
        "seconds": seconds,
        "history": history,
    }


def model_version() -> str:
    """The package version and the commit of this project, if known."""
    commit = git_state().get("commit") or ""
    version = package_version()
    return f"{version}+{commit[:12]}" if commit else version
