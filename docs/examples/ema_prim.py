"""Exploratory modelling with EMA Workbench: the conditions under which IS-K grows.

Runs the model over a Latin hypercube of three uncertainties with EMA Workbench's
``perform_experiments``, then asks PRIM for the box of conditions where IS-K ends
stronger than in most runs, and SALib for Sobol' indices of the same outcome through
``experiments.api.run``. Executed by the test suite (tests/test_api.py), so it stays
true to the code; run it yourself with

    pip install -e ".[ema]"
    python docs/examples/ema_prim.py [--scenarios 200 --steps 104 --population 2000]
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

UNCERTAINTIES = {
    "womens_rights": (0.0, 1.0),  # a lever, held constant over the run
    "counter_isk": (0.0, 1.0),
    "recruitment_strength": (0.0, 0.3),
}


def main() -> None:
    """Run the EMA experiments, the PRIM box and the Sobol' indices; print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=24)
    parser.add_argument("--steps", type=int, default=26)
    parser.add_argument("--population", type=int, default=300)
    args = parser.parse_args()

    # 1. EMA Workbench: the model as an EMA Model, experiments over a Latin hypercube
    model = ema_model(
        UNCERTAINTIES,
        outcomes=["isk_strength", "defection_rate"],
        steps=args.steps,
        constants={"population": args.population},
    )
    experiments, outcomes = ema.perform_experiments(model, scenarios=args.scenarios)
    strength = outcomes["isk_strength"]
    strong = strength > np.median(strength)
    print(
        f"{len(experiments)} experiments; final IS-K strength {strength.min():,.0f}-"
        f"{strength.max():,.0f} people (median {np.median(strength):,.0f})"
    )

    # 2. PRIM: the box of uncertainties where IS-K ends stronger than the median
    explorer = prim.Prim(experiments[list(UNCERTAINTIES)], strong, peel_alpha=0.1)
    box = explorer.find_box()
    print("PRIM box (where IS-K ends above the median):")
    print(box.box_lim.to_string() if box is not None else "  none found")

    # 3. SALib: Sobol' indices of final IS-K strength, the model called through run()
    problem = salib_problem(UNCERTAINTIES)
    problem["bounds"] = [list(bounds) for bounds in UNCERTAINTIES.values()]
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
