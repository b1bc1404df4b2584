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
# # Station summary
#
# Mean temperature per station from `data/observations.csv`.
#
# The notebook runs in its own folder, so the relative path works from wherever `pytest --nb` is started.

# %%
import csv
from collections import defaultdict
from statistics import mean

# %%
with open("data/observations.csv", newline="") as fh:
    rows = list(csv.DictReader(fh))
len(rows)

# %%
by_station = defaultdict(list)
for row in rows:
    by_station[row["station"]].append(float(row["temperature_c"]))
means = {station: round(mean(values), 2) for station, values in by_station.items()}
means

# %% [markdown]
# A notebook test is only as good as its assertions: state what must hold.

# %%
assert means["south"] > means["north"], means
print(f"warmest: {max(means, key=means.get)}")
