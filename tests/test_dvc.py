"""The pipeline as a user drives it: dvc.yaml is valid, and a param change shows in `dvc metrics diff`."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

DVC = str(Path(sys.executable).with_name("dvc"))


def run(args, cwd, check=True):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result


def test_stage_graph_lists_every_stage():
    out = run([DVC, "stage", "list"], ROOT).stdout
    for stage in ("prepare", "teacher", "extract", "pretrain", "agora-pool", "finetune-bert@CoLA",
                  "finetune-bort@RACE-high", "agora@WSC", "shared@bort-agora-SuperGLUE-RTE", "time", "report"):
        assert stage in out, stage


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_param_change_shows_in_metrics_diff(tmp_path):
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(ROOT), str(clone)], tmp_path)
    if not (clone / "dvc.lock").exists():
        pytest.skip("no committed dvc.lock to diff against")
    run(["git", "config", "user.email", "ci@example.invalid"], clone)
    run(["git", "config", "user.name", "ci"], clone)
    run([DVC, "exp", "run", "-S", "data.noise=0.2", "prepare"], clone)
    diff = json.loads(run([DVC, "metrics", "diff", "--json"], clone).stdout or "{}")
    changed = diff.get("diff", diff).get("metrics/prepare.json", {})
    assert any(key.startswith("floor_tfidf_logreg.") for key in changed), diff
