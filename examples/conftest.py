"""Fixtures for the examples' tests, the notebooks' own ``test_*`` functions included:
those run under pytest in the notebook's kernel, which finds this file as pytest would."""

import csv
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "observations.csv"


@pytest.fixture
def observations():
    """The station observations, temperatures as floats."""
    with DATA.open(newline="") as fh:
        return [{**row, "temperature_c": float(row["temperature_c"])} for row in csv.DictReader(fh)]
