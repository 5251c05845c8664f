import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SMALL = {"train": 40, "dev": 20, "test": 20}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; run with -m slow")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")


def pytest_collection_modifyitems(config, items):
    """Slow tests stay out of the default run; `-m slow` (or any -m) selects explicitly."""
    if config.getoption("-m"):
        return
    keep = [i for i in items if "slow" not in i.keywords]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if "slow" in i.keywords])
        items[:] = keep


@pytest.fixture(scope="session")
def embedded_root(tmp_path_factory):
    """All 23 tasks generated small, in the official layouts."""
    from bort import embedded
    root = tmp_path_factory.mktemp("tasks")
    embedded.write_all(root, SMALL, seed=0, noise=0.05)
    return root


def run_module(*args, cwd=ROOT):
    """Run `python -m ...` or a script like a user would; returns CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def tiny_teacher():
    """A random ⟨3, 4, 32, 64⟩ BERT over 60 tokens (distillation and device tests)."""
    import mxnet as mx
    import numpy as np
    from bort import distillation as kd
    from bort.arch import Arch
    arch = Arch(3, 4, 32, 64, vocab_size=60, max_length=16)
    kd.seed_everything(0)
    model = arch.build()
    model.initialize(mx.init.Normal(0.2))
    kd.forward_hidden(model, np.zeros((1, 2), np.float32))
    return model, arch
