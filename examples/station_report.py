# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Station report
#
# One notebook, several inputs: the parameter sets in this notebook's metadata (`nbharness.parameters`) make `pytest --nb` run it once per station, as `station_report.ipynb::station_report[north]` and `[south]`. papermill injects each set after the cell tagged `parameters`. The test in the last cell runs in each station's run: `test_days_above_counts_only_warmer_days[north]` and `[south]`.

# %% tags=["parameters"]
station = "north"
threshold_c = 14.0

# %%
import csv
from statistics import mean

with open("data/observations.csv", newline="") as fh:
    temperatures = [
        float(row["temperature_c"]) for row in csv.DictReader(fh) if row["station"] == station
    ]
assert temperatures, f"no observations for {station!r}"


# %%
def days_above(limit):
    return sum(1 for t in temperatures if t > limit)


mean_c = round(mean(temperatures), 2)
print(f"{station}: mean {mean_c} °C, {days_above(threshold_c)} days above {threshold_c} °C")


# %%
def test_days_above_counts_only_warmer_days():
    assert days_above(max(temperatures)) == 0
    assert days_above(min(temperatures) - 1) == len(temperatures)
