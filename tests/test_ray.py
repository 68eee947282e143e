"""The Ray executor against real local clusters that talk only to 127.0.0.1.

Each test owns its Ray processes: they run with a temporary directory of the test's own, and
the test finds them by that directory. The workers get azscale through Ray's runtime_env (the
test checks they import it from Ray's own upload, not from this checkout or any driver path),
and the sweep lies under a storage root named on the command line. It checks, while the sweep runs, that every socket they
listen on is a loopback socket; afterwards that none of them is left; and it never signals a Ray
process it did not start (no `ray stop`, which would end every Ray cluster on the machine)."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from azscale.checkpoints import read_metrics
from azscale.sweep import ray_init_kwargs, ray_is_loopback

pytest.importorskip("ray")

SWEEP = ["sweep", "tic_tac_toe", "--widths", "4,8", "--seeds", "1", "--preset", "smoke",
         "--random-games", "2000", "--games-per-pair", "4", "--match-sims", "4", "--bootstrap", "10",
         "--set", "steps=3", "--executor", "ray"]
ROOT = Path(__file__).resolve().parent.parent
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_under(tmp: str) -> list[int]:
    """Processes whose command line names our temp dir (all of the test's Ray processes do)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if tmp.encode() in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def _listening(pids: list[int]) -> set[str]:
    """host:port of every TCP socket in LISTEN state owned by one of `pids`."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            pass
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:
                host, port = f[1].split(":")
                raw = bytes.fromhex(host)
                if len(raw) == 4:
                    addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
                else:   # /proc prints IPv6 as four little-endian 32-bit words
                    addr = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
                found.add(f"{addr}:{int(port, 16)}")
    return found


def _is_loopback(hostport: str) -> bool:
    host = hostport.rsplit(":", 1)[0]
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1") or host.startswith("::ffff:127.")


class _Watch(threading.Thread):
    """Samples the listening sockets of the test's Ray processes until stopped."""

    def __init__(self, tmp: str):
        super().__init__(daemon=True)
        self.tmp, self.seen, self.stop = tmp, set(), threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.seen |= _listening(_pids_under(self.tmp))
            time.sleep(0.3)


def _wait_gone(tmp: str, seconds: float = 60) -> None:
    """Wait until no process of ours is left (Ray's processes take a while to exit, longer on a
    loaded machine), at most `seconds`: an event, not a fixed sleep; `_reap` then judges."""
    deadline = time.time() + seconds
    while _pids_under(tmp) and time.time() < deadline:
        time.sleep(0.2)


def _reap(tmp: str) -> list[int]:
    """Kill whatever of ours is left (only processes under our temp dir); return their pids."""
    left = _pids_under(tmp)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def _run_sweep(args, env, tmp):
    watch = _Watch(tmp)
    watch.start()
    try:
        r = subprocess.run([sys.executable, "-m", "azscale.cli", *map(str, args)], capture_output=True,
                           text=True, timeout=420, env=env)
    finally:
        watch.stop.set()
        watch.join()
    return r, watch.seen


def _check_sweep(r, out: Path, seen: set[str], tmp: str, node_storage: Path | None = None):
    assert r.returncode == 0, r.stderr[-3000:]
    log = (out / "sweep.log").read_text()
    assert "training task(s) submitted to Ray" in log
    for w in (4, 8):
        assert read_metrics(out / "runs" / f"tic_tac_toe-w{w}-s0")[-1]["step"] == 3
    assert (out / "analysis" / "verdict.md").exists()
    # the package reached the workers through runtime_env: Ray's upload under the test's temp dir
    where = re.search(r"azscale from (\S+); storage root there (\S+)", log)
    assert where, log
    assert where.group(1).startswith(tmp) and "runtime_resources" in where.group(1), where.group(1)
    assert not where.group(1).startswith(str(ROOT)), where.group(1)
    if node_storage is not None:       # the node mounts the storage elsewhere: paths re-rooted there
        assert where.group(2) == str(node_storage), where.group(2)
    # the tournament's pairs, the states replay and the random games ran as Ray tasks
    for what in ("tournament pairs: 3 Ray task(s)", "states replay:", "random games: 1 Ray task(s)"):
        assert what in log, log
    assert seen, "no listening socket of the test's Ray processes was ever observed"
    assert all(_is_loopback(a) for a in seen), f"Ray listened beyond loopback: {sorted(seen)}"


def test_ray_executor_on_a_loopback_head(tmp_path):
    tmp = tempfile.mkdtemp(prefix="azray")      # short: Ray's unix socket paths have a length limit
    port = _free_port()
    # the node sees the shared storage at another path (a link here), named by AZSCALE_STORAGE
    storage = tmp_path / "storage"
    storage.mkdir()
    mount = Path(tmp) / "mnt"
    mount.symlink_to(storage)
    env = dict(os.environ, HOME=tmp, AZSCALE_STORAGE=str(mount), **LOOPBACK_ONLY)  # HOME: Ray's auth token
    ray_cli = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    log = open(Path(tmp) / "head.log", "w")
    head = subprocess.Popen([ray_cli, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                             f"--port={port}", f"--temp-dir={tmp}", "--num-cpus=2", "--include-dashboard=false",
                             "--disable-usage-stats"], stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:      # ready once the head's GCS accepts connections; fail loudly, never hang
            assert head.poll() is None, "ray start exited: " + (Path(tmp) / "head.log").read_text()[-3000:]
            assert time.time() < deadline, "Ray head not up in 120 s: " + (Path(tmp) / "head.log").read_text()[-3000:]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        out = storage / "sw"
        driver_env = {k: v for k, v in env.items() if k != "AZSCALE_STORAGE"}
        r, seen = _run_sweep([*SWEEP, "--address", f"127.0.0.1:{port}", "--storage", storage, "--out", "sw"],
                             driver_env, tmp)
        _check_sweep(r, out, seen, tmp, node_storage=mount)
        assert {f"127.0.0.1:{port}", f"::ffff:127.0.0.1:{port}"} & seen, seen
    finally:
        head.terminate()            # --block: the head stops every process it started
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        log.close()
        _wait_gone(tmp)
        left = _reap(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    assert not left, f"Ray processes of this test outlived its head: {left}"


def test_ray_executor_starts_a_loopback_local_cluster(tmp_path):
    """No --address: the sweep starts a local Ray of its own, bound to 127.0.0.1, and ends it."""
    tmp = tempfile.mkdtemp(prefix="azray")
    env = dict(os.environ, RAY_TMPDIR=tmp, HOME=tmp)      # the sweep sets the loopback switch itself
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    env.pop("RAY_ADDRESS", None)
    out = tmp_path / "sw"
    try:
        r, seen = _run_sweep([*SWEEP, "--out", out], env, tmp)
        _check_sweep(r, out, seen, tmp)
        _wait_gone(tmp)
    finally:
        left = _reap(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    assert not left, f"the sweep left Ray processes running: {left}"


def test_only_loopback_addresses_are_pinned():
    for a in (None, "local", "127.0.0.1:6379", "localhost:1", "ray://127.0.0.1:10001"):
        assert ray_is_loopback(a) and ray_init_kwargs(a)["_node_ip_address"] == "127.0.0.1"
    for a in ("auto", "10.0.0.5:6379", "head.cluster:6379"):
        assert not ray_is_loopback(a) and "_node_ip_address" not in ray_init_kwargs(a)
