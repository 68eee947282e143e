"""How far a sweep or a run is, read from its files only: `azscale status`, the sweep's live
progress and the progress lines of `sweep.log`.

Nothing here takes a lock or writes, so it works while a sweep runs (on this machine or, with a
shared filesystem, on a cluster) and after it was killed. Per run: step/steps, games, states/s,
the last losses and an ETA from the recent steps' wall time; per sweep: the runs, the analysis
steps finished (`steps.json`), skipped, still to come, the one running (from `sweep.log`), and
whether the process that holds the sweep's lock is alive on this machine. It reads small files
only (of a resume.pt only its step, memory-mapped), so it answers in a second or two however
large the runs are.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from . import checkpoints as ck
from .checks import is_finite_number
from . import runs
from .errors import UserError
from .sweepsteps import STEPS

RATE_STEPS = 20            # recent steps whose median time is the seconds per step (and so the ETA)


def _tail_metrics(path: Path, nbytes: int = 65536) -> list[dict[str, Any]]:
    """The last complete metrics lines (a torn last line after a kill is skipped)."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - nbytes))
            data = fh.read()
    except FileNotFoundError:
        return []
    except OSError as e:
        raise UserError(f"{path}: unreadable ({e.strerror or e})") from None
    lines = data.split(b"\n")
    if size > nbytes:
        lines = lines[1:]                  # the first line may be cut
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int):
            problem = _metrics_problem(rec)
            if problem:
                raise UserError(f"{path}: damaged record at step {rec['step']} ({problem})")
            out.append(rec)
    return out


_COUNTS = ("games_total", "states_total", "states_per_s", "simulations_per_s", "loss_value", "loss_policy")


def _metrics_problem(rec: dict[str, Any]) -> str | None:
    """Why a metrics line cannot be what `train` wrote (None when it can): a step that is not a
    count, a missing or impossible wall time, a figure that is not a finite number >= 0."""
    def real(x):
        return is_finite_number(x) and x >= 0
    if isinstance(rec["step"], bool) or rec["step"] < 0:
        return f"step {rec['step']!r}"
    if not real(rec.get("wall_seconds")):
        return f"wall_seconds {rec['wall_seconds']!r}" if "wall_seconds" in rec else "no wall_seconds"
    bad = [k for k in _COUNTS if k in rec and rec[k] is not None and not real(rec[k])]
    return f"{bad[0]} {rec[bad[0]]!r}" if bad else None


def duration(seconds: float | None) -> str:
    """`3 h 05 min`, `12 min`, `40 s`; `-` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min"
    return f"{s} s"


def _lock_holder(d: Path) -> dict[str, Any]:
    """The pid written into `.lock` by its last holder, and whether that process is alive here
    (a Ray worker on another node is not visible from this machine)."""
    try:
        text = (d / ".lock").read_text().strip()
        pid = int(text)
    except (OSError, ValueError):
        return {"pid": None, "alive": False}
    alive = Path(f"/proc/{pid}").exists() if Path("/proc").is_dir() else _pid_alive(pid)
    if alive:
        try:
            alive = b"azscale" in Path(f"/proc/{pid}/cmdline").read_bytes() or b"ray" in Path(
                f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            pass
    return {"pid": pid, "alive": alive}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def run_progress(run_dir: Path, name: str | None = None) -> dict[str, Any]:
    """One run's progress from its small files: config.json, the tail of metrics.jsonl, the
    final checkpoint's existence. It never loads resume.pt (a large file: loading one takes
    seconds to minutes; only its step is read, memory-mapped), so `step` is the last step recorded
    in metrics.jsonl; a killed run resumes from its last snapshot at or before it. Whether the
    run is finished, and whether it is damaged (a record missing, a damaged config.json or
    resume.pt), is decided by `checkpoints.run_status`, the rule that train, sweep and `load_run`
    apply: a damaged run is reported as such with the reason, not raised."""
    run_dir = Path(run_dir)
    out: dict[str, Any] = {"run": name or run_dir.name, "path": str(run_dir), "state": "not started",
                           "params": None, "width": None, "family": None, "seed": None, "steps": None,
                           "step": 0, "games": 0, "states": 0, "states_per_s": None, "simulations_per_s": None,
                           "loss_value": None, "loss_policy": None, "seconds_per_step": None, "eta_seconds": None,
                           "wall_seconds": 0.0, "seconds_since_update": None, "finished": False}
    if not (run_dir / ck.CONFIG_FILE).exists():
        return out
    try:
        cfg = ck.read_run_config(run_dir)
    except UserError as e:
        return {**out, "state": "damaged", "problem": str(e)}
    st = cfg["settings"]
    out.update(run=cfg["run"], params=cfg["params"], width=st.get("width"), family=st.get("family"),
               seed=st.get("seed"), steps=st["steps"], state="started")
    try:
        tail = _tail_metrics(run_dir / ck.METRICS_FILE)
    except UserError as e:
        return {**out, "state": "damaged", "problem": str(e)}
    if tail:
        last = tail[-1]
        recent = [m for m in tail if m["step"] > last["step"] - RATE_STEPS]
        sps = None
        # the median of the recent steps' own times: a burst of load (or a snapshot) at the end
        # does not set the rate of a run, or of the runs of its size that are still to train
        per = [(b["wall_seconds"] - a["wall_seconds"]) / (b["step"] - a["step"])
               for a, b in zip(recent, recent[1:]) if b["step"] > a["step"] and b["wall_seconds"] >= a["wall_seconds"]]
        if per:
            sps = statistics.median(per)
        elif last["step"] > 0:
            sps = last.get("wall_seconds", 0.0) / last["step"]
        out.update(step=last["step"], games=last.get("games_total", 0), states=last.get("states_total", 0),
                   states_per_s=last.get("states_per_s"), simulations_per_s=last.get("simulations_per_s"),
                   loss_value=last.get("loss_value"), loss_policy=last.get("loss_policy"),
                   wall_seconds=last.get("wall_seconds", 0.0), seconds_per_step=sps,
                   seconds_since_update=max(0.0, time.time() - (run_dir / ck.METRICS_FILE).stat().st_mtime))
    try:                        # the one rule train, sweep and load_run apply (reads resume.pt's step only)
        rs = ck.run_status(run_dir)
    except UserError as e:
        return {**out, "state": "damaged", "problem": str(e), "eta_seconds": None}
    out["saturation"] = _saturation(run_dir, elo=None)
    out["finished"] = rs.finished
    if out["finished"]:
        out["state"] = "finished"
    elif out["step"] >= st["steps"]:
        out["state"] = "all steps, no final checkpoint"     # being written, or the run stopped there
    elif out["seconds_per_step"] is not None:
        out["eta_seconds"] = (st["steps"] - out["step"]) * out["seconds_per_step"]
    return out


def _saturation(run_dir: Path, elo, seat: dict[str, Any] | None = None,
                exact: dict[str, Any] | None = None) -> dict[str, Any]:
    """Improving / saturated / cannot tell (analysis/saturation.py) from the run's train loss and,
    where the sweep has an Elo fit with within-run checkpoints, its Elo gain over the last third
    (or, where the seat decides those games, its exact move-accuracy gain)."""
    from .analysis.saturation import run_saturation
    r = run_saturation(run_dir, elo, ck.read_metrics, seat, exact)
    return {"state": r["state"], "reason": r["reason"], "elo_gain": r["elo"].get("gain"), "elo_ci": r["elo"].get("ci"),
            "loss_change": r["loss"].get("relative_change"), "loss_ci": r["loss"].get("ci"),
            "exact_gain": r["exact"].get("gain"), "exact_ci": r["exact"].get("ci")}


def _sweep_elo(root: Path):
    """The sweep's Elo fit ((table, bootstrap samples), within-run seat counts by run) and exact
    move-accuracy gains by run, for saturation; None / {} where not there or damaged."""
    from .analysis.saturation import elo_seat, read_exact_gains
    elo, seat, exact = None, {}, {}
    try:
        if (root / "analysis" / "elo" / "elo.csv").exists():
            elo, seat = elo_seat(root / "analysis" / "elo")
        exact = read_exact_gains(root / "analysis" / "loss-solver" / "loss.json")
    except UserError:
        pass
    return elo, seat, exact


def _sweep_log_state(root: Path) -> dict[str, Any]:
    """The last line of sweep.log and the analysis step running, if one was started and has not
    finished since."""
    p = root / "sweep.log"
    if not p.exists():
        return {"last_log": None, "analysis_running": None}
    try:
        with open(p, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 32768))
            lines = [x for x in fh.read().decode(errors="replace").splitlines() if x.strip()]
    except OSError:
        return {"last_log": None, "analysis_running": None}
    running, since = None, None
    for line in lines:
        stamp, body = line.split("  ", 1) if "  " in line else ("", line)
        if body.startswith("step ") and body.endswith(": started"):
            running, since = body[5:-len(": started")], stamp
        elif body.startswith("step ") and running and body[5:].startswith(running + ":"):
            running = None
        elif body.startswith("sweep ") and ("started" in body or "stopped" in body):
            running = None
    if running and since:
        try:
            running += f" (for {duration(time.time() - time.mktime(time.strptime(since, '%Y-%m-%d %H:%M:%S')))})"
        except ValueError:
            pass
    return {"last_log": lines[-1] if lines else None, "analysis_running": running}


def sweep_status(root: Path) -> dict[str, Any]:
    from .sweepcfg import build, from_record
    root = Path(root)
    rec = runs.read_manifest(root, "sweep", ("game", "widths"))
    sc, ex = build(*from_record(rec, str(root / "sweep.json")))
    names = [sc.run_name(w, s, f) for f, w, s in sc.sizes()]
    kinds = {sc.run_name(w, s, f): (f or "mlp", w) for f, w, s in sc.sizes()}
    extra = sorted(p.name for p in (root / "runs").glob("*") if p.is_dir() and p.name not in names) \
        if (root / "runs").is_dir() else []
    rows = [run_progress(root / "runs" / n, name=n) for n in names + extra]
    want = sc.trained_steps
    for r in rows:                  # the sweep's steps grew: a run finished at fewer trains on
        if r.get("steps") and r["steps"] < want and r["run"] in names and r.get("state") != "damaged":
            if r.get("finished"):
                r.update(finished=False, state=f"trains on to {want:,}", eta_seconds=None)
            elif r.get("seconds_per_step") is not None:         # still on its way to the old steps
                r.update(steps=want, state="started", eta_seconds=(want - r["step"]) * r["seconds_per_step"])
    elo, seat, exact = _sweep_elo(root)
    if elo is not None or exact:
        for r in rows:
            if "saturation" in r:
                r["saturation"] = _saturation(root / "runs" / r["run"], elo, seat.get(r["run"]), exact.get(r["run"]))
    done, _ = runs.read_sweep_steps(root)
    skipped_p = root / "analysis" / "skipped.json"
    skipped = runs.read_json(skipped_p, "list of skipped steps") if skipped_p.exists() else {}
    logst = _sweep_log_state(root)
    lock = _lock_holder(root)
    finished = sum(r["finished"] for r in rows)
    return {"sweep": str(root), "id": rec.get("id"), "game": sc.game, "preset": sc.preset, "executor": ex.kind,
            "running": lock["alive"], "pid": lock["pid"],
            "runs": rows, "runs_finished": finished, "runs_total": len(rows),
            "training_left": training_left(rows, kinds, want, ex.parallel if ex.kind == "local" else None),
            "analysis": {"done": [s for s in STEPS if s in done], "skipped": skipped,
                         "running": logst["analysis_running"] if lock["alive"] else None,
                         "pending": [s.name for s in STEPS.values() if s.name not in done and s.asked(sc)]},
            "last_log": logst["last_log"]}


def training_left(rows: list[dict[str, Any]], kinds: dict[str, tuple[str, int]], steps: int,
                  parallel: int | None) -> dict[str, Any]:
    """The sweep's training time left: every unfinished run's remaining steps at its own recent
    seconds per step or, for a run with none yet, at the median of its size's (family and width)
    runs' rates. With the local executor's `parallel` runs at once: the summed time over the runs
    trained at once, but never less than the longest single run's. Elsewhere (Ray) the sum is
    given as it is (`summed`). Runs with no rate for their size are named, not guessed; damaged
    runs are named too."""
    rates: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        if r.get("seconds_per_step") and r["run"] in kinds:
            rates.setdefault(kinds[r["run"]], []).append(r["seconds_per_step"])
    times, unknown, damaged = [], [], []
    for r in rows:
        if r.get("finished") or r["run"] not in kinds:
            continue
        if r.get("state") == "damaged":
            damaged.append(r["run"])
            continue
        left = max(0, steps - (r.get("step") or 0))
        own = r.get("seconds_per_step") if r.get("state") != "not started" else None
        rate = own or (statistics.median(rates[kinds[r["run"]]]) if rates.get(kinds[r["run"]]) else None)
        if rate is None:
            unknown.append(r["run"])
        else:
            times.append(left * rate)
    seconds = None
    if times:
        seconds = max(sum(times) / min(parallel, len(times)), max(times)) if parallel else sum(times)
    return {"seconds": seconds, "parallel": parallel, "summed": not parallel, "no_rate_yet": unknown,
            "damaged": damaged}


def status(path: Path) -> dict[str, Any]:
    path = Path(path)
    if (path / "sweep.json").is_file():
        return {"kind": "sweep", **sweep_status(path)}
    if ck.is_run(path):
        r = run_progress(path)
        return {"kind": "run", **r, "running": _lock_holder(path)["alive"]}
    if not path.exists():
        raise UserError(f"{path}: no such directory")
    raise UserError(f"{path}: neither a sweep (sweep.json) nor a run (config.json)")


def _num(x, fmt="{:,.0f}") -> str:
    return "-" if x is None else fmt.format(x)


def run_table(rows: list[dict[str, Any]]) -> list[str]:
    head = (f"{'run':<28}{'params':>9}{'step/steps':>13}{'games':>11}{'states/s':>10}{'loss v':>8}{'loss p':>8}"
            f"  {'saturation':<12}  {'ETA / state'}")
    out = [head]
    for r in rows:
        steps = f"{r['step']}/{r['steps']}" if r["steps"] else "-"
        tail = r["state"] if r["state"] not in ("started",) else duration(r["eta_seconds"])
        if r.get("problem"):
            tail += f" ({r['problem']})"
        out.append(f"{r['run']:<28}{_num(r['params']):>9}{steps:>13}{_num(r['games']):>11}"
                   f"{_num(r['states_per_s']):>10}{_num(r['loss_value'], '{:.3f}'):>8}"
                   f"{_num(r['loss_policy'], '{:.3f}'):>8}  {(r.get('saturation') or {}).get('state', '-'):<12}  {tail}")
    return out


def _training_left_text(t: dict[str, Any], running: bool) -> str:
    if t["seconds"] is None and not t["no_rate_yet"]:
        return ""
    text = f"; training left ~{duration(t['seconds'])}" if t["seconds"] is not None else "; training left unknown"
    if t.get("summed"):
        text += " (summed over the runs; the executor trains several at once)"
    elif t["parallel"] and t["parallel"] > 1:
        text += f" ({t['parallel']} runs at once)"
    if t["no_rate_yet"]:
        text += (f"{', more' if t['seconds'] is not None else ''} for {len(t['no_rate_yet'])} run(s) with no "
                 f"rate yet for their size ({', '.join(t['no_rate_yet'])})")
    if t.get("damaged"):
        text += f"; not counted, damaged: {', '.join(t['damaged'])}"
    return text + ("" if running else " once resumed")


def format_status(st: dict[str, Any]) -> str:
    if st["kind"] == "run":
        lines = [f"run {st['path']}: " + ("training now" if st["running"] else "not running")]
        return "\n".join(lines + run_table([st]))
    a = st["analysis"]
    state = f"running (pid {st['pid']})" if st["running"] else "not running"
    lines = [f"sweep {st['sweep']} ({st['game']}, preset {st['preset']}, executor {st['executor']}): {state}; "
             f"{st['runs_finished']}/{st['runs_total']} runs finished"
             + _training_left_text(st["training_left"], st["running"])]
    lines += run_table(st["runs"])
    lines.append(f"analysis done: {', '.join(a['done']) or 'none'}")
    if a["running"]:
        lines.append(f"analysis running: {a['running']}")
    if a["skipped"]:
        lines.append(f"analysis not computed (too little data): {', '.join(sorted(a['skipped']))}")
    if a["pending"]:
        lines.append(f"analysis to do: {', '.join(a['pending'])}")
    if st["last_log"]:
        lines.append(f"last log line: {st['last_log']}")
    return "\n".join(lines)


class SweepLog:
    """Timestamped lines in `<sweep>/sweep.log` (appended and flushed), echoed to `echo`."""

    def __init__(self, root: Path, echo: Callable[[str], None] | None):
        self.path = Path(root) / "sweep.log"
        self.echo = echo

    def __call__(self, msg: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        with runs.naming(self.path), os.fdopen(fd, "a") as fh:
            fh.write("".join(f"{stamp}  {line}\n" for line in msg.splitlines() or [""]))
        if self.echo is not None:
            self.echo(msg)


class Progress:
    """Live progress of training runs, read from their files: one bar per run in training (on
    stderr, with steps, games, states/s, value loss and ETA), and every `log_every` seconds a
    line per run in `sweep.log`."""

    def __init__(self, runs_: list[tuple[str, Path]], log: SweepLog, show: bool, log_every: float = 300.0):
        self.runs = runs_
        self.log = log
        self.show = show
        self.log_every = log_every
        self.last_log = time.monotonic()
        self.bars: dict[str, Any] = {}
        self.active: set[str] = set()

    def update(self, active: set[str]) -> None:
        self.active = set(active)
        rows = {n: run_progress(d, name=n) for n, d in self.runs if n in active}
        if self.show:
            from .progress import bar as progress_bar
            for n in list(self.bars):
                if n not in active:
                    self.bars.pop(n).close()
            for n, r in rows.items():
                if not r["steps"]:
                    continue                   # not started yet: no bar until its settings are written
                if n not in self.bars:
                    self.bars[n] = progress_bar(total=r["steps"] or 1, desc=n, unit="step",
                                        bar_format="{desc} {percentage:3.0f}%|{bar}| {n}/{total} [{elapsed}]{postfix}")
                b = self.bars[n]
                if b.total != r["steps"]:          # the sweep's steps grew: the run trains on to the new total
                    b.total = r["steps"]
                b.n = r["step"]
                b.set_postfix_str(self._postfix(r), refresh=True)
        if time.monotonic() - self.last_log >= self.log_every and rows:
            self.last_log = time.monotonic()
            self.log.echo, echo = None, self.log.echo
            try:
                for n, r in rows.items():
                    self.log(f"  {n}: step {r['step']}/{r['steps']}, {self._postfix(r)}")
            finally:
                self.log.echo = echo

    @staticmethod
    def _postfix(r: dict[str, Any]) -> str:
        parts = [f"{r['games']:,} games"]
        if r["states_per_s"] is not None:
            parts.append(f"{r['states_per_s']:,.0f} states/s")
        if r["loss_value"] is not None:
            parts.append(f"loss_v {r['loss_value']:.3f}")
        parts.append(f"ETA {duration(r['eta_seconds'])}")
        return ", ".join(parts)

    def close(self) -> None:
        for b in self.bars.values():
            b.close()
        self.bars.clear()
