"""Restock forecasts backtested: the method inventory.forecasting chooses against the naive forecast.

Seeded weekly sales of four kinds, SERIES of each:

- steady: a level of 8 to 20 units a week with Poisson noise, 80 weeks;
- trend: a level that grows by 0.1 to 0.4 units a week, Poisson noise, 80 weeks;
- seasonal: three years (156 weeks) of a growing level with a yearly swing of ±40 % (a Christmas-shaped
  season) and Poisson noise;
- sporadic: 156 weeks in which a sale comes with a chance of 0.1 to 0.4, of 1 + Poisson(1 to 4) units.

The last HOLDOUT weeks are held out. At each of them (a rolling origin) the chosen method is fitted on the
weeks before and forecasts the next week (one step), as does the naive forecast (next week = this week).
Errors are scaled as in MASE: by the mean absolute week-to-week change of the series before the held-out
weeks, so the naive forecast's MASE on the training weeks is 1 by construction; on the held-out weeks it
is whatever it is. Prints, per kind and over all series: the mean MASE of the chosen method and of the
naive forecast on the held-out weeks, their ratio (below 1: the method beats the naive forecast), and the
methods the rule chose.
"""

import time
from collections import Counter

import _setup
import numpy as np

_setup.setup_django()

from inventory import forecasting  # noqa: E402

SEED = 20261203
SERIES = 8
HOLDOUT = 26


def steady(rng) -> np.ndarray:
    return rng.poisson(rng.uniform(8, 20), 80).astype(float)


def trend(rng) -> np.ndarray:
    weeks = np.arange(80)
    return rng.poisson(rng.uniform(5, 10) + rng.uniform(0.1, 0.4) * weeks).astype(float)


def seasonal(rng) -> np.ndarray:
    weeks = np.arange(156)
    level = rng.uniform(10, 20) + rng.uniform(0, 0.05) * weeks
    season = 1 + 0.4 * np.cos(2 * np.pi * (weeks - rng.integers(45, 51)) / 52)
    return rng.poisson(level * season).astype(float)


def sporadic(rng) -> np.ndarray:
    weeks = 156
    sold = rng.random(weeks) < rng.uniform(0.1, 0.4)
    return np.where(sold, 1 + rng.poisson(rng.uniform(1, 4), weeks), 0).astype(float)


KINDS = {"steady": steady, "trend": trend, "seasonal": seasonal, "sporadic": sporadic}


def backtest(series: np.ndarray) -> tuple[float, float, str]:
    """(MASE of the chosen method, MASE of the naive forecast, the method chosen at the last origin)."""
    start = len(series) - HOLDOUT
    scale = float(np.mean(np.abs(np.diff(series[:start]))))
    method_errors, naive_errors, method = [], [], ""
    for origin in range(start, len(series)):
        history = series[:origin]
        result = forecasting.forecast(history, horizon=1)
        method = result.method
        method_errors.append(abs(series[origin] - result.path[0]))
        naive_errors.append(abs(series[origin] - history[-1]))
    return float(np.mean(method_errors)) / scale, float(np.mean(naive_errors)) / scale, method


def main() -> None:
    rng = np.random.default_rng(SEED)
    print(f"{SERIES} series per kind, the last {HOLDOUT} weeks held out, one-step rolling-origin forecasts; "
          f"MASE scaled by the in-sample naive error (seed {SEED})")
    print(f"{'kind':<10} {'MASE method':>12} {'MASE naive':>11} {'ratio':>7} {'seconds':>8}  methods chosen")
    totals = []
    for kind, make in KINDS.items():
        started = time.perf_counter()
        results = [backtest(make(rng)) for _ in range(SERIES)]
        seconds = time.perf_counter() - started
        method_mase = float(np.mean([r[0] for r in results]))
        naive_mase = float(np.mean([r[1] for r in results]))
        chosen = ", ".join(f"{name} {count}" for name, count in Counter(r[2] for r in results).most_common())
        print(f"{kind:<10} {method_mase:>12.3f} {naive_mase:>11.3f} {method_mase / naive_mase:>7.3f} "
              f"{seconds:>8.1f}  {chosen}")
        totals += results
    method_mase = float(np.mean([r[0] for r in totals]))
    naive_mase = float(np.mean([r[1] for r in totals]))
    print(f"{'overall':<10} {method_mase:>12.3f} {naive_mase:>11.3f} {method_mase / naive_mase:>7.3f}")


if __name__ == "__main__":
    main()
