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


def run_cli(*args, timeout=300, env=None):
    """Run the installed CLI as a user would; returns CompletedProcess."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "azscale.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=full_env)
