"""Exploratory modelling with EMA Workbench: policies across scenarios, and where IS-K grows.

The model as EMA Workbench's ``ReplicatorModel`` (``experiments.api.ema_model``): its
uncertainties are the calibrated parameters over their prior ranges, its levers the
policy levers, each experiment replicated over seeds, outcomes weekly series. Policies
(lever settings) are crossed with scenarios (Latin hypercube of the uncertainties); each
policy is then judged across the scenarios, PRIM finds the box of conditions where IS-K
ends stronger than in most runs, and SALib gives Sobol' indices of the same outcome
through ``experiments.api.run``. Executed by the test suite (tests/test_api.py), so it
stays true to the code; run it yourself with

    pip install 'isk-defection[analysis]'
    python docs/examples/ema_prim.py [--scenarios 200 --policies 8 --steps 104 --population 2000]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="ipyparallel not installed")

import ema_workbench as ema  # noqa: E402
from ema_workbench.analysis import prim  # noqa: E402
from SALib.analyze import sobol as sobol_analyze  # noqa: E402
from SALib.sample import sobol as sobol_sample  # noqa: E402

from isk_defection.experiments.api import ema_model, run, salib_problem  # noqa: E402

LEVERS = ["womens_rights", "counter_isk"]  # the policies vary these two
SOBOL = {"recruitment_strength": (0.1, 0.3), "isk_reach": (0.01, 0.1)}  # narrowed priors


def main() -> None:
    """Run policies x scenarios, the robustness table, a PRIM box and Sobol' indices."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=24)
    parser.add_argument("--policies", type=int, default=3)
    parser.add_argument("--replications", type=int, default=2)
    parser.add_argument("--steps", type=int, default=26)
    parser.add_argument("--population", type=int, default=300)
    args = parser.parse_args()

    # 1. EMA Workbench: policies (levers) x scenarios (calibrated priors), replicated
    model = ema_model(
        levers=LEVERS,
        outcomes=["isk_strength", "defection_rate"],
        steps=args.steps,
        replications=args.replications,
        constants={"population": args.population},
    )
    experiments, outcomes = ema.perform_experiments(
        model, scenarios=args.scenarios, policies=args.policies
    )
    # weekly series per replication: (experiments, replications, weeks); final week, mean
    strength = outcomes["isk_strength"][:, :, -1].mean(axis=1)
    print(
        f"{len(experiments)} experiments ({args.policies} policies x {args.scenarios} "
        f"scenarios, {args.replications} seeds each); final IS-K strength "
        f"{strength.min():,.0f}-{strength.max():,.0f} people"
    )

    # 2. Each policy across the scenarios: median and 90th percentile of IS-K strength
    print("policy                         median      p90  (final IS-K strength, people)")
    for rows in experiments.groupby("policy").groups.values():
        levers = experiments.loc[rows[0], LEVERS]
        label = ", ".join(f"{k} {v:.2f}" for k, v in levers.items())
        values = strength[np.asarray(rows)]
        print(f"{label:<28} {np.median(values):9,.0f} {np.quantile(values, 0.9):8,.0f}")

    # 3. PRIM: the box of uncertainties where IS-K ends above the median
    uncertainties = [u.name for u in model.uncertainties]
    strong = strength > np.median(strength)
    box = prim.Prim(experiments[uncertainties], strong, peel_alpha=0.1).find_box()
    whole = experiments[uncertainties].agg(["min", "max"])
    moved = [u for u in uncertainties if not np.allclose(box.box_lim[u], whole[u])]
    print("PRIM box (where IS-K ends above the median; the limits that moved):")
    print(box.box_lim[moved].to_string() if moved else "  none found")

    # 4. SALib: Sobol' indices of final IS-K strength, the model called through run()
    problem = salib_problem(ranges=SOBOL)
    design = sobol_sample.sample(problem, 4, seed=1)
    y = np.array(
        [
            run(
                dict(zip(problem["names"], row, strict=True)) | {"population": args.population},
                steps=args.steps,
                outcomes=["isk_strength"],
            )["isk_strength"]
            for row in design
        ]
    )
    indices = sobol_analyze.analyze(problem, y, seed=1)
    for name, s1, st in zip(problem["names"], indices["S1"], indices["ST"], strict=True):
        print(f"Sobol' {name:<22} S1 {s1:6.2f}  ST {st:6.2f}")


if __name__ == "__main__":
    main()
