"""An ordinary unit test of code that lives in a notebook: import the exported module."""

from pathlib import Path

from station_tools import mean_by_station, read_observations

DATA = Path(__file__).parent / "data" / "observations.csv"


def test_mean_by_station():
    assert mean_by_station(read_observations(DATA)) == {"north": 14.37, "south": 21.37}


def test_rows_carry_floats():
    assert {type(row["temperature_c"]) for row in read_observations(DATA)} == {float}
