"""A unit test of a notebook: run it once with chosen parameters, then ask its kernel."""

from pathlib import Path

NOTEBOOK = Path(__file__).parent / "station_report.ipynb"


def test_south_is_warm(notebook):
    nb = notebook(NOTEBOOK, parameters={"station": "south", "threshold_c": 21.0})
    assert nb.value("mean_c") == 21.37
    assert nb.call("days_above", 20.0) == 3
    assert nb.text(3) == "south: mean 21.37 °C, 2 days above 21.0 °C\n"
