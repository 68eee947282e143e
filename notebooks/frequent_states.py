# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The most frequent states, one by one
# The report shows loss against rank as smoothed curves. Here are the states behind the top
# ranks themselves: each drawn as its board, with how often it was visited, its mean turn, and
# the value loss of every size on it, at the final checkpoints and across training (which sizes
# learn which of the frequent states, and when).
#
# **Parameters**: `SWEEP`, a sweep directory (`azscale sweep ... --out DIR`) whose analysis has
# run; `TOP`, how many states. Set them in the next cell, or through the environment variables
# `AZSCALE_SWEEP` and `AZSCALE_TOP` before starting Jupyter.

# %% tags=["parameters"]
import os

SWEEP = os.environ.get("AZSCALE_SWEEP", "sweeps/ttt")
TOP = int(os.environ.get("AZSCALE_TOP", "12"))

# %%
import matplotlib.pyplot as plt
import numpy as np

import azscale

states = azscale.load_states(SWEEP, boards=TOP)
print(f"{states.attrs['game']}: {len(states):,} distinct states, key {states.attrs['key_scheme']}, "
      f"games {states.attrs['selection']['window']} ({states.attrs['selection']['games']:,} games)")
top = states.head(TOP)
top[["rank", "count", "mean_turn", "outcome_p0", "player"]]

# %% [markdown]
# ## Each state's value loss by size (final checkpoints, every size on the same states)
# From the sweep's pooled loss step (`analysis/loss-pooled`): (z − v)², both from the side to
# move; z is the mean outcome of the state in the pooled games. Seeds are averaged. A state
# seen fewer than the loss step's minimum count has no loss.

# %%
loss = azscale.load_loss(SWEEP, "loss-pooled")
final = loss[loss["step"] == loss.groupby("run")["step"].transform("max")]
by_size = final[final["key"].isin(top["key"])].groupby(["key", "params"])["loss_value"].mean().unstack("params")
table = top.set_index("key")[["rank", "count", "mean_turn"]].join(by_size)
table.columns = [c if isinstance(c, str) else f"loss @ {c:,} params" for c in table.columns]
table.sort_values("rank")

# %%
sizes = sorted(final["params"].unique())
colours = dict(zip(sizes, plt.cm.viridis(np.linspace(0, 0.95, len(sizes)))))
cols = 4
rows = int(np.ceil(len(top) / cols))
fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
for ax, (_, s) in zip(axes.flat, top.iterrows()):
    ax.text(0.02, 0.98, s["board"] or "(board not rebuilt)", family="monospace", fontsize=8, va="top",
            transform=ax.transAxes)
    vals = [by_size.loc[s["key"], p] if s["key"] in by_size.index else np.nan for p in sizes]
    inset = ax.inset_axes([0.55, 0.08, 0.42, 0.42])
    inset.bar(range(len(sizes)), vals, color=[colours[p] for p in sizes])
    inset.set_xticks(range(len(sizes)), [f"{p:,}" for p in sizes], rotation=90, fontsize=5)
    inset.tick_params(labelsize=5)
    inset.set_title("loss by size", fontsize=6)
    ax.set_title(f"rank {s['rank']}: {s['count']:,} visits, turn {s['mean_turn']:.1f}", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
for ax in axes.flat[len(top):]:
    ax.axis("off")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## When each size learns the most frequent states
# From the sweep's per-run loss step (`analysis/loss`, every checkpoint): the mean loss over
# those of the top states that a run saw often enough, per checkpoint, one line per run
# (colour: size, line style: seed).

# %%
per_run = azscale.load_loss(SWEEP, "loss")
sel = per_run[per_run["key"].isin(top["key"])]
curve = sel.groupby(["run", "params", "step"])["loss_value"].mean().reset_index()
seeds = azscale.load_sweep(SWEEP).set_index("run")["seed"]
styles = ["-", "--", ":", "-."]
fig, ax = plt.subplots(figsize=(6, 4))
for run in seeds.index:
    g = curve[curve["run"] == run]
    if g.empty:
        continue
    p = g["params"].iloc[0]
    ax.plot(g["step"].clip(lower=1), g["loss_value"], marker="o", ms=3, color=colours.get(p, "k"),
            ls=styles[int(seeds[run]) % len(styles)], label=f"{p:,} params, seed {seeds[run]}")
ax.set_xscale("log")
ax.set_xlabel("learner step (checkpoint)")
ax.set_ylabel(f"mean value loss on the top {TOP} states")
ax.legend(fontsize=6)
ax.grid(True, alpha=0.3)
plt.show()
