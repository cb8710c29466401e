"""Random draws for compiled rules: from a NumPy Generator, or from the kernel's own stream.

A compiled rule takes ``rng``: a ``numpy.random.Generator`` when called from Python (its
state advances as NumPy's would), or ``None`` inside the step kernel, which then draws
from numba's generator, seeded once per week from the model's Generator (``kernel.step``):
passing a Generator into compiled code costs about 10 µs a call, most of a small step.
Numba compiles each rule once per kind of ``rng`` (``rng is None`` is decided then).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def uniform(rng: Any) -> float:
    """A draw from U[0, 1)."""
    if rng is None:
        return np.random.random()
    return rng.random()


@njit(cache=True, inline="always")
def below(rng: Any, high: int) -> int:
    """An integer drawn uniformly from 0 .. high-1."""
    if rng is None:
        return np.random.randint(0, high)
    return rng.integers(0, high)


@njit(cache=True, inline="always")
def poisson(rng: Any, rate: float) -> int:
    """A Poisson draw with mean ``rate``."""
    if rng is None:
        return np.random.poisson(rate)
    return rng.poisson(rate)


@njit(cache=True, inline="always")
def binomial(rng: Any, trials: int, chance: float) -> int:
    """A binomial draw: successes in ``trials`` trials of chance ``chance``."""
    if rng is None:
        return np.random.binomial(trials, chance)
    return rng.binomial(trials, chance)


@njit(cache=True, inline="always")
def permutation(rng: Any, n: int) -> np.ndarray:
    """A random order of 0 .. n-1."""
    if rng is None:
        return np.random.permutation(n)
    return rng.permutation(n)
