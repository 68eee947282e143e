# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Zipf curves of a sweep
# Loads a sweep's pooled states table and its fits, redraws the rank-frequency curve with the
# least-squares fit line, and the random-play baseline beside it. Set `SWEEP` to your sweep.

# %%
import json
import os
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pyarrow.parquet as pq

SWEEP = Path(os.environ.get("SWEEP", "sweeps/c4"))
OUT = Path(os.environ.get("NOTEBOOK_OUT", "."))
fits = json.loads((SWEEP / "analysis/zipf/fits.json").read_text())
states = pq.read_table(SWEEP / "analysis/zipf/states.parquet")
print("key scheme:", fits["key_scheme"], "| selection:", json.loads(states.schema.metadata[b"selection"]))

# %%
fig, ax = plt.subplots(figsize=(6, 4))
counts = states["count"].to_numpy()
ranks = np.arange(1, len(counts) + 1)
ax.loglog(ranks, counts, ".", ms=2, label=f"self-play ({fits['curves'][-1]['label']})")
random_states = SWEEP / "analysis/zipf-random/states.parquet"
if random_states.exists():
    rc = pq.read_table(random_states)["count"].to_numpy()
    ax.loglog(np.arange(1, len(rc) + 1), rc, ".", ms=2, label="random play")
for f in fits["curves"][-1]["fits"]:
    if f["method"] == "ls" and f["alpha"] == f["alpha"]:
        r = np.array([f["rank_min"], f["rank_max"]], float)
        ax.plot(r, counts[f["rank_min"] - 1] * (r / f["rank_min"]) ** -f["alpha"], "k--",
                label=f"LS α = {f['alpha']:.3f}")
ax.set_xlabel("rank")
ax.set_ylabel("visits")
ax.legend()
fig.savefig(OUT / "nb_zipf.png", dpi=100)
exponents = {f["method"]: f["alpha"] for f in fits["curves"][-1]["fits"]}
print("exponents (rank-frequency convention):", exponents)
