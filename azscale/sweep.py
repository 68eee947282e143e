"""Sweeps: train a family of sizes x seeds, then analyse them, resumably; grow them later.

    sweeps/<name>/
      sweep.json                 the sweep's settings (`sweepcfg`: what a rerun may change)
      sweep.log                  timestamped: runs and analysis steps started and finished, progress
      runs/<game>-w<W>-s<S>/     one training run per size and seed (each resumes by itself)
      logs/<run>.log             the output of each locally trained run
      random/                    uniformly random games (the Zipf baseline)
      matches/final/             round-robin of the final checkpoints and the random player
      matches/checkpoints-K/<run>/  with checkpoint_tournament = K: K checkpoints of the run, round-robin
      analysis/<step>/           zipf, zipf-random, loss, loss-pooled, loss-solver, elo, scaling
      analysis/verdict.md, verdict.json
      steps.json                 the analysis steps finished, each with the inputs it read
      temperature/               with a temperature study: the study (azscale temperature)

Every step is idempotent: training and the tournament resume on their own; an analysis step is
redone from scratch unless it is recorded in steps.json, which is written (atomically) only
after the step's outputs are complete. A sweep killed at any moment continues where it stopped
and duplicates nothing.

Growing: a rerun with more widths, families or seeds trains only the new runs. Each finished
step is recorded with its inputs (the runs it read, the settings it used); a step whose inputs
changed is redone, and so is every step that reads its results (`Step.depends`; each step is
declared once, in `sweepsteps.STEPS`); the tournament keeps its finished pairs and plays only the
new ones. `reanalyse` redoes chosen steps on purpose (after the analysis code changed). A
steps.json of an earlier azscale (no inputs) counts its steps as made from the sweep.json beside it.

Executors: `local` trains `parallel` runs at once, each in its own process (`azscale train`,
output in logs/<run>.log), which dies with the sweep; `ray` submits each run as a Ray task (CPUs
= the run's actors, GPUs on request) to an existing cluster or a local one, and runs the
tournament's pairs, the states replay and the random games as Ray tasks too (`parallel`). The
sweep's directory lies under a storage root that every node sees (`Executor.storage`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from . import checkpoints as ck
from . import parallel, runs
from .errors import Terminated, ThinData, UserError
from .status import Progress, SweepLog, duration, run_progress
from .sweepcfg import Executor, SweepConfig, build, compare, from_record, grown_steps, record
from .sweepsteps import ANALYSIS_STEPS, STEPS, Context, Step, check_reanalyse, dependents, step_inputs


def _remove_outputs(root: Path, steps: set[str]) -> None:
    """Delete the outputs of analysis steps that are redone: only the files each step writes
    (`Step.outputs`: a directory of its `runs.RESULT_FILES` kind, or the verdict's two files).
    Everything is checked first: a file the step did not write there, or a link, is refused with
    one line and nothing is deleted."""
    from .analysis.elo_report import VERDICT_TITLE, _is_verdict_json
    plan: list[Path] = []
    for s in sorted(steps):
        st = STEPS.get(s)            # a step another azscale recorded in steps.json wrote nothing known
        kind, outputs = (st.output_kind, st.outputs) if st is not None else (None, ())
        for rel in outputs:
            p = root / rel
            if p.is_symlink():
                raise UserError(f"{p} is a symbolic link; --reanalyse deletes only files the sweep wrote (remove the link)")
            if not p.exists():
                continue
            if kind is not None:
                if not p.is_dir():
                    raise UserError(f"{p} is not the directory the sweep's {s} step writes; move it away")
                foreign = runs.foreign_entries(p, kind)
                if foreign:
                    raise UserError(f"{p / foreign[0]}: not a file the sweep's {s} step wrote; --reanalyse would "
                                    f"delete it: move it away first")
                plan += [e for e in sorted(p.iterdir()) if e.name != ".lock"] + [p]
            else:
                ok = p.is_file() and (runs.starts_with(p, VERDICT_TITLE) if p.suffix == ".md"
                                      else _is_verdict_json(runs.json_of(p)))
                if not ok:
                    raise UserError(f"{p}: not the {s} step's file; --reanalyse would delete it: move it away first")
                plan.append(p)
    for p in plan:
        if p.is_dir() and p.name == "figures":
            for f in p.iterdir():
                f.unlink()
            p.rmdir()
        elif p.is_dir():
            (p / ".lock").unlink(missing_ok=True)
            p.rmdir()
        else:
            p.unlink()


def _train_one(cfg_dict: dict[str, Any], run_dir: str, max_minutes: float | None,
               tensorboard: bool = False) -> dict[str, Any]:
    from .config import from_dict
    from .train import train
    return train(from_dict(cfg_dict), Path(run_dir), quiet=True, tensorboard=tensorboard,
                 max_seconds=None if max_minutes is None else max_minutes * 60)


def run_configs(sc: SweepConfig, root: Path):
    """(config, run directory) of every run; checks the game and every setting first."""
    for f, w, s in sc.sizes():
        yield sc.train_config(w, s, f), runs.inside(root, root / "runs" / sc.run_name(w, s, f))


def sweep(sc: SweepConfig, root: Path, ex: Executor | None = None, log: Callable[[str], None] | None = print,
          reanalyse: Iterable[str] = (), progress: bool = True, analyse_finished: bool = False) -> dict[str, Any]:
    """Train every run of `sc` that is not finished, then every analysis step not done (or whose
    inputs changed). `log` echoes the sweep.log lines (None: the log file only); `progress`
    shows live bars on stderr. `analyse_finished`: train nothing and analyse the runs that have
    finished (at least one); the steps record the runs they read, so the full sweep later redoes
    every step that the other runs change."""
    root = Path(root)
    ex = ex or Executor()
    if not sc.widths:
        raise UserError("--widths must name at least one width")
    if sc.seeds < 1:
        raise UserError("--seeds must be >= 1")
    redo = check_reanalyse(reanalyse)
    if ex.kind == "ray":
        root = root.absolute()      # Ray workers start elsewhere: every path they get is absolute
    configs = list(run_configs(sc, root))          # validates the game and every setting before any work
    storage = _storage(ex, root)
    if ex.kind == "ray":
        check_ray_reachable(ex.address)     # one line at once, not minutes of Ray's retries
    runs.claim_dir(root, "sweep")
    if analyse_finished and not root.exists():
        raise _nothing_finished()             # refused before the first write: no directory left behind
    root.mkdir(parents=True, exist_ok=True)
    with runs.RunLock(root):
        runs.claim_dir(root, "sweep")
        manifest = root / "sweep.json"
        rec = {**record(sc, ex), "kind": "sweep", "id": runs.new_identity()}
        have_sc = None
        grows: list[str] = []
        if manifest.exists():
            have = runs.read_manifest(root, "sweep")
            have_sc = build(*from_record(have, str(manifest)))[0]
            grows = compare(have_sc, sc, root)
            rec["id"] = have.get("id") or rec["id"]
        done, inputs = runs.read_sweep_steps(root)
        # a run already there must have been trained with these settings, finished or not (a
        # changed preset must not leave old runs silently in the comparison); every check comes
        # before the first write, so a refused sweep changes no file
        for c, d in configs:
            ck.check_settings(d, c)
        pending = [(c, d) for c, d in configs if not _finished(d, c.steps)]
        if analyse_finished and len(pending) == len(configs):
            raise _nothing_finished()
        old_steps, new_steps = grown_steps(have_sc, sc) if have_sc is not None else (None, None)
        if new_steps is not None:
            _keep_matches_aside(root, old_steps)
        elif inputs is not None:
            inputs = _with_trained_steps(inputs, sc)
        if inputs is None:        # an earlier azscale's steps.json: its steps were made from the stored settings
            base = have_sc or sc
            legacy = step_inputs(base, [base.run_name(w, s, f) for f, w, s in base.sizes()], True)
            inputs = {k: legacy[k] for k in done if k in legacy}
            runs.write_sweep_steps(root, done, inputs)
        runs.atomic_write_json(manifest, rec)
        slog = SweepLog(root, log)
        slog(f"sweep {root} started: {sc.game}, preset {sc.preset}, {len(configs)} runs, executor {ex.kind}"
             + (f" (parallel {ex.parallel})" if ex.kind == "local" and ex.parallel > 1 else "")
             + (f"; grows: {'; '.join(grows)}" if grows else ""))
        # 1. training
        slog(f"training: {len(configs) - len(pending)}/{len(configs)} runs finished")
        with _executor(ex, root, storage, rec["id"], slog) as session:
            if analyse_finished and pending:
                names = [d.name for _, d in pending]
                ready = [d for _, d in configs if d.name not in names]
                slog(f"training skipped (--analyse-finished): analysing {len(ready)} of {len(configs)} runs; "
                     f"not finished: {', '.join(names)}")
                with parallel.progress_bars(progress and log is not None):
                    _analyse(sc, root, ready, slog, redo, inputs, done)
                slog(f"sweep analysed its finished runs -> {root}; rerun without --analyse-finished to train the rest")
                return {"finished": False, "unfinished_runs": names, "analysed_runs": [d.name for d in ready]}
            t0 = time.monotonic()
            if pending:
                show = progress and log is not None
                if ex.kind == "ray":
                    _train_ray(pending, sc, ex, root, rec["id"], session, slog, show)
                else:
                    _train_local(pending, sc, ex, root, slog, show)
                slog(f"training: finished its part in {duration(time.monotonic() - t0)}")
            unfinished = [d.name for c, d in configs if not _finished(d, c.steps)]
            if unfinished:
                slog(f"sweep stopped: {len(unfinished)} run(s) not finished ({', '.join(unfinished)}); rerun to continue")
                return {"finished": False, "unfinished_runs": unfinished}
            with parallel.progress_bars(progress and log is not None):
                _analyse(sc, root, [d for _, d in configs], slog, redo, inputs, done)
        slog(f"sweep finished -> {root}")
    return {"finished": True, "root": str(root)}


def _nothing_finished() -> UserError:
    return UserError("--analyse-finished: no run of this sweep has finished training yet; rerun without it to train them")


def _with_trained_steps(inputs: dict[str, Any], sc: SweepConfig) -> dict[str, Any]:
    """Steps recorded before `trained_steps` was an input were made with the sweep's steps (these
    did not change: a change is a growth, handled before): they get it, so they are not redone."""
    steps = sc.trained_steps
    return {k: ({**v, "trained_steps": steps} if isinstance(v, dict) and "trained_steps" not in v
                and k in STEPS and "trained_steps" in STEPS[k].inputs else v) for k, v in inputs.items()}


def _keep_matches_aside(root: Path, old_steps: int) -> None:
    """The runs train on (their steps grew): the games between their old final checkpoints, the
    within-run round-robins that end at them, and a temperature study of them move to
    `matches/steps-<old>/` (kept, never mixed with the new agents' games; a tournament or study
    refuses players that changed). Each move is one rename, so a sweep stopped halfway moves the
    rest when it is rerun."""
    src = root / "matches"
    moving = [d for d in sorted(src.glob("*")) if d.is_dir() and (d.name == "final" or d.name.startswith("checkpoints-"))] \
        if src.is_dir() else []
    moving += [root / "temperature"] if (root / "temperature").is_dir() else []
    if not moving:
        return
    dest = src / f"steps-{old_steps}"
    dest.mkdir(parents=True, exist_ok=True)
    for d in moving:
        if (dest / d.name).exists():
            raise UserError(f"{d}: cannot keep it aside, {dest / d.name} exists (move one of them away)")
        os.replace(d, dest / d.name)


def _finished(run_dir: Path, steps: int) -> bool:
    """The one rule (`checkpoints.run_status`); a run whose records are incomplete is refused there."""
    if not ck.is_run(run_dir):
        return False
    st = ck.run_status(run_dir)
    return st.finished and st.steps >= steps


def _storage(ex: Executor, root: Path) -> Path:
    """The storage root: the one named, which must hold the sweep, else the sweep's parent."""
    if ex.storage is None:
        return root.resolve().parent
    storage = Path(ex.storage).resolve()
    runs.inside(storage, root)
    return storage


# -- local training: `parallel` runs at once, each its own `azscale train` process -----------------

def _train_command(cfg, d: Path, sc: SweepConfig, ex: Executor) -> list[str]:
    cmd = [sys.executable, "-m", "azscale.cli", "train", sc.game, "--run-dir", str(d), "--preset", sc.preset,
           "--width", str(cfg.width), "--seed", str(cfg.seed), "--family", cfg.family, "-q"]
    for k, v in sc.overrides.items():
        cmd += ["--set", f"{k}={v}"]
    if sc.max_minutes_per_run is not None:
        cmd += ["--max-minutes", repr(float(sc.max_minutes_per_run))]
    if ex.tensorboard:
        cmd.append("--tensorboard")
    return cmd


def _stop(procs: dict[str, Any], ask: bool = True, grace: float = 30.0) -> None:
    """Ask the training processes to stop (SIGTERM, which they handle as an interrupt and which
    reaches them even where SIGINT is ignored; not again after a Ctrl-C, which reached them
    already), then end those still running. A run keeps what it recorded either way."""
    for p, *_ in procs.values():
        if ask and p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p, *_ in procs.values():
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _train_local(pending, sc: SweepConfig, ex: Executor, root: Path, slog: SweepLog, show: bool) -> None:
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    env = {**os.environ, "AZSCALE_PARENT_PID": str(os.getpid()), "PYTHONUNBUFFERED": "1"}
    queue = list(pending)
    procs: dict[str, Any] = {}
    prog = Progress([(d.name, d) for _, d in pending], slog, show)
    try:
        while queue or procs:
            while queue and len(procs) < ex.parallel:
                cfg, d = queue.pop(0)
                cmd = _train_command(cfg, d, sc, ex)
                fh = open(logs / f"{d.name}.log", "ab")
                p = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
                fh.close()
                procs[d.name] = (p, d, time.monotonic())
                slog(f"  training {d.name} ({cfg.width} wide, {cfg.family}): log in {logs.name}/{d.name}.log")
            for name, (p, d, t0) in list(procs.items()):
                rc = p.poll()
                if rc is None:
                    continue
                del procs[name]
                if rc != 0:
                    raise UserError(f"training {name} failed: {_last_error(logs / f'{name}.log', rc)}")
                st = "finished" if run_progress(d)["finished"] else "stopped"
                slog(f"  {name}: {st} after {duration(time.monotonic() - t0)}")
            prog.update(set(procs))
            time.sleep(0.5)
    except BaseException as exc:
        _stop(procs, ask=not isinstance(exc, KeyboardInterrupt) or isinstance(exc, Terminated))
        raise
    finally:
        prog.close()


def _last_error(log: Path, rc: int) -> str:
    try:
        lines = [x for x in log.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        lines = []
    err = next((x for x in reversed(lines) if x.startswith("azscale: error: ")), None)
    if err:
        return err[len("azscale: error: "):]
    return f"exit status {rc} (see {log})"


# -- Ray -----------------------------------------------------------------------------------------

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def ray_is_loopback(address: str | None) -> bool:
    """True when the sweep starts its own local Ray (no address) or joins one at a loopback
    address: then every Ray process and the driver must stay on 127.0.0.1."""
    if address is None or address == "local":
        return True
    return address.rsplit(":", 1)[0].removeprefix("ray://") in LOOPBACK_HOSTS


RAY_CONNECT_SECONDS = 10


def check_ray_reachable(address: str | None, seconds: float = RAY_CONNECT_SECONDS) -> None:
    """Refuse, in one line and within `seconds`, a Ray address where nothing answers: Ray's own
    client retries for minutes, printing warnings, before it gives up. Only named HOST:PORT
    addresses are probed (a TCP connection, closed at once); `auto` and a local Ray are Ray's."""
    import socket

    from .sweepcfg import ray_host_port
    hp = ray_host_port(address) if address is not None else None
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=seconds):
            pass
    except OSError as exc:
        why = "nothing answers there" if isinstance(exc, ConnectionRefusedError) else \
            f"no answer within {seconds:g} s" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise UserError(f"cannot reach the Ray cluster at {address}: {why} (is `ray start --head` running there, "
                        f"and is the port open?)") from None


def ray_init_kwargs(address: str | None, runtime_env: dict[str, Any] | None = None) -> dict[str, Any]:
    """Arguments for `ray.init`. A local or loopback cluster is pinned to 127.0.0.1: Ray
    otherwise rewrites "127.0.0.1" to the address it would use towards the internet (the
    eth0 address), which a closed or firewalled machine cannot reach. Ray's own switch for a
    single-machine, loopback-only cluster is RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read when
    ray is first imported; a cluster address the user names elsewhere is left as it is.
    `runtime_env` (`parallel.runtime_env`) brings this azscale to every worker."""
    kw: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": False}
    if runtime_env:
        kw["runtime_env"] = runtime_env
    if ray_is_loopback(address):
        kw["_node_ip_address"] = "127.0.0.1"
    return kw


def _probe(spec: dict[str, Any]) -> dict[str, Any]:
    """On a Ray worker: where azscale comes from, and whether the sweep is visible there."""
    import socket

    import azscale
    return {"host": socket.gethostname(), "azscale": azscale.__file__, "pid": os.getpid(),
            "storage": parallel.node_storage(spec["driver_storage"]),
            "sweep_visible": _sweep_visible(Path(spec["sweep_dir"]), spec["sweep_id"])}


def _sweep_visible(sweep_dir: Path, sweep_id: str) -> bool:
    try:
        return json.loads((sweep_dir / "sweep.json").read_text()).get("id") == sweep_id
    except (OSError, ValueError, AttributeError):
        return False


def _train_task(spec: dict[str, Any]) -> dict[str, Any]:
    """One training run in a Ray worker. Refuses, rather than trains into a fresh directory,
    when this node does not see the sweep (its storage is not mounted here)."""
    import socket
    sweep_dir = Path(spec["sweep_dir"])
    if not _sweep_visible(sweep_dir, spec["sweep_id"]):
        raise UserError(f"node {socket.gethostname()} does not see the sweep at {sweep_dir} (no sweep.json with its "
                        f"id): mount the storage root on every node, at the same path or at $AZSCALE_STORAGE")
    return _train_one(spec["config"], spec["run_dir"], spec["max_minutes"], spec["tensorboard"])


@contextlib.contextmanager
def _executor(ex: Executor, root: Path, storage: Path, sweep_id: str, slog: SweepLog):
    """For Ray: connect (or start a local Ray), bring azscale to the workers, check that a
    worker sees the sweep, and run the analysis' parallel work as Ray tasks while open."""
    if ex.kind != "ray":
        yield None
        return
    if ray_is_loopback(ex.address):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray (pip install 'azscale[ray]')") from None
    started_here = not ray.is_initialized()
    stage = None
    if started_here:
        renv, stage = parallel.runtime_env()
        try:
            ray.init(**ray_init_kwargs(ex.address, renv))
        except (ConnectionError, ValueError) as e:
            shutil.rmtree(stage, ignore_errors=True)
            raise UserError(f"cannot reach the Ray cluster at {ex.address}: {str(e).splitlines()[0]}") from None
    try:
        res = ray.cluster_resources()
        slog(f"Ray: {len([n for n in ray.nodes() if n.get('Alive')])} node(s), {res.get('CPU', 0):g} CPUs, "
             f"{res.get('GPU', 0):g} GPUs; storage root {storage}")
        spec = {"driver_storage": str(storage), "sweep_dir": str(root.resolve()), "sweep_id": sweep_id}
        probe = ray.get(ray.remote(parallel.on_node).options(num_cpus=0).remote(_probe, spec, str(storage)))
        slog(f"Ray worker on {probe['host']}: azscale from {probe['azscale']}; storage root there {probe['storage']}")
        if not probe["sweep_visible"]:
            raise UserError(f"a Ray worker on {probe['host']} does not see the sweep at {probe['storage']}: the storage "
                            f"root must be a filesystem every node mounts (same path, or set AZSCALE_STORAGE on the node)")
        with parallel.ray_session(ray, str(storage), slog) as session:
            yield session
    finally:
        if started_here:
            ray.shutdown()
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)


def _train_ray(pending, sc: SweepConfig, ex: Executor, root: Path, sweep_id: str, session, slog: SweepLog,
               show: bool) -> None:
    ray = session.ray
    remote = ray.remote(parallel.on_node)
    sweep_dir = str(root.resolve())
    refs = {}
    for c, d in pending:
        spec = {"config": c.to_dict(), "run_dir": str(d.resolve()), "sweep_dir": sweep_dir, "sweep_id": sweep_id,
                "max_minutes": sc.max_minutes_per_run, "tensorboard": ex.tensorboard}
        ref = remote.options(num_cpus=max(1, c.actors), num_gpus=ex.gpus_per_run).remote(_train_task, spec,
                                                                                          session.storage)
        refs[ref] = (d, time.monotonic())
    slog(f"  {len(refs)} training task(s) submitted to Ray ({max(1, pending[0][0].actors)} CPU(s)"
         f"{f', {ex.gpus_per_run:g} GPU(s)' if ex.gpus_per_run else ''} each)")
    prog = Progress([(d.name, d) for _, d in pending], slog, show)
    waiting = list(refs)
    try:
        while waiting:
            ready, waiting = ray.wait(waiting, num_returns=1, timeout=1.0)
            for r in ready:
                d, t0 = refs[r]
                try:
                    summary = ray.get(r)
                except Exception as exc:
                    err = parallel.task_error(exc, f"training {d.name}")
                    if err is not None:
                        raise UserError(f"training {d.name} failed: {err}") from None
                    raise
                slog(f"  {d.name}: {'finished' if summary['finished'] else 'stopped'} after "
                     f"{duration(time.monotonic() - t0)}")
            prog.update({refs[r][0].name for r in waiting})
    except BaseException:
        for r in waiting:
            with contextlib.suppress(Exception):
                ray.cancel(r)
        raise
    finally:
        prog.close()


# -- analysis ------------------------------------------------------------------------------------

def _stale_study(stale: set[str], inputs: dict[str, Any], want: dict[str, Any]) -> bool:
    """Whether the sweep's temperature study must be played again from the start: it is to be
    redone and its agents (the runs) changed. Its games are numbered by its number of agents
    (temperature.py), so it cannot take a new agent in place; new temperatures, a new
    --bootstrap or --reanalyse keep its games (it plays only what it lacks), and a study
    no longer asked for is left as it is."""
    if "temperature" not in stale or "temperature" not in want:
        return False
    had = inputs.get("temperature")
    return isinstance(had, dict) and had.get("runs") != want["temperature"].get("runs")


def _analyse(sc: SweepConfig, root: Path, run_dirs: list[Path], log, redo: set[str], inputs: dict[str, Any],
             done: set[str]) -> None:
    from .oracles import has_oracle
    workers = os.cpu_count() or 1
    a = root / "analysis"
    want = step_inputs(sc, [d.name for d in run_dirs], sc.solver and has_oracle(sc.game))
    stale = {s for s in done if s not in want or inputs.get(s) != want[s]} | (redo & set(want))
    stale = dependents(stale) & (done | redo)
    if stale & done:
        log(f"redoing analysis steps: {', '.join(s for s in ANALYSIS_STEPS if s in stale & done)}"
            + (" (asked)" if redo else " (their inputs changed)"))
    if _stale_study(stale, inputs, want) and (root / "temperature").is_dir():
        log("the temperature study's agents changed: it is played again with every agent")
        shutil.rmtree(root / "temperature")
    _remove_outputs(root, stale)
    done -= stale
    sk = a / "skipped.json"
    if stale and sk.exists():
        skipped = runs.read_json(sk, "list of skipped steps")
        runs.atomic_write_json(sk, {k: v for k, v in skipped.items() if k not in stale})
    runs.write_sweep_steps(root, done, inputs)

    def step(st: Step) -> None:
        """Run an analysis step once. An `optional` step that finds too little data for its
        estimate (`ThinData`) is recorded in analysis/skipped.json with the reason, and the
        sweep goes on to the report, which names it; a sweep never dies on thin data. Any other
        UserError (a damaged table, say) stops the sweep with its one-line message."""
        name = st.name
        if name in done or name not in want:
            return
        log(f"step {name}: started")
        t0 = time.monotonic()
        try:
            st.run(ctx)
            log(f"step {name}: finished in {duration(time.monotonic() - t0)}")
        except UserError as e:
            if not (st.optional and isinstance(e, ThinData)):
                log(f"step {name}: failed: {e}")
                raise
            log(f"step {name}: not computed: {e}")
            skipped = runs.read_json(sk, "list of skipped steps") if sk.exists() else {}
            a.mkdir(parents=True, exist_ok=True)
            runs.atomic_write_json(sk, {**skipped, name: str(e)})
        done.add(name)
        inputs[name] = want[name]
        runs.write_sweep_steps(root, done, inputs)

    ctx = Context(sc, root, run_dirs, workers)
    for st in STEPS.values():
        step(st)
    log(f"analysis finished -> {a}")

