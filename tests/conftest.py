import os
import subprocess
import sys

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


def uniform_evaluator(obs, legal):
    """Uniform priors over legal moves and a value of 0: search must find tactics by itself."""
    p = legal.astype(np.float32)
    return p / p.sum(1, keepdims=True), np.zeros(len(obs), np.float32)


@pytest.fixture
def uniform():
    return uniform_evaluator


def child_pids(pid):
    """The live (not zombie) child processes of `pid`, from /proc."""
    from pathlib import Path
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def run_cli(*args, timeout=300, env=None):
    """Run the installed CLI as a user would; returns CompletedProcess."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "azscale.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=full_env)


def tree_digest(root):
    """Every path under `root` with a digest of its content (a link: its target; a directory:
    None). Lock files count by existence only: taking a lock writes the holder's pid into it."""
    import hashlib
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = "link:" + os.readlink(p)
            elif os.path.isdir(p):
                out[rel] = None
            elif name == ".lock":
                out[rel] = "lock"
            else:
                with open(p, "rb") as fh:
                    out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


def assert_refused(result, before=None, after=None, may_create=(), match=None):
    """The CLI refused with exactly one `azscale: error:` line, exit status 2, no traceback; no
    file that existed before changed or vanished, and new paths appeared only under
    `may_create` (relative to the digested root), with no temporary file left anywhere."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("azscale: error: "), result.stderr[-2000:]
    if match is not None:
        import re
        assert re.search(match, lines[0]), lines[0]
    if before is not None:
        changed = sorted(k for k, v in before.items() if after.get(k, "<gone>") != v)
        assert not changed, f"changed or deleted: {changed[:10]}"
        new = sorted(k for k in after if k not in before)
        stray = [k for k in new if not any(k == m or k.startswith(m.rstrip("/") + "/") for m in may_create)]
        assert not stray, f"written outside the allowed places: {stray[:10]}"
        assert not [k for k in new if k.endswith(".tmp")], f"temporary files left: {new}"
