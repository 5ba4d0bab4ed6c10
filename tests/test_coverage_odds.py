"""The coverage-odds benchmark's arithmetic on cases with known answers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from coverage_odds import pass_odds


def test_perfect_coverage_never_lands_in_the_85_95_range():
    odds = pass_odds([23, 3, 3], 1.0, 1000, np.random.default_rng(0))
    assert odds == {"P(mean in range)": 0.0, "P(every task >= floor)": 1.0, "P(pass)": 0.0}


def test_a_three_target_task_reaches_75_percent_only_when_every_target_is_covered():
    odds = pass_odds([3], 0.9, 200_000, np.random.default_rng(1))
    assert odds["P(every task >= floor)"] == pytest.approx(0.9**3, abs=0.005)
    # one task: its coverage is the mean; 2/3 and 3/3 are both outside [85%, 95%]
    assert odds["P(mean in range)"] == 0.0
