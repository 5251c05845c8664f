"""The pipeline as a user drives it: dvc.yaml is valid, and a param change shows in `dvc metrics diff`."""
import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
    for stage in ("prepare", "teacher", "extract", "pretrain", "agora-pool", "finetune@CoLA",
                  "finetune@RACE-high", "diagnostics", "int8", "time", "report"):
        assert stage in out, stage


def imported_modules(script: Path) -> set:
    """Every bort/ module a script reaches through imports, function-level ones included."""
    todo, seen = [script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module == "bort":
                names = [f"bort/{alias.name}.py" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bort."):
                names = [node.module.replace(".", "/") + ".py"]
            elif isinstance(node, ast.Import):
                names = [a.name.replace(".", "/") + ".py" for a in node.names if a.name.startswith("bort.")]
            todo += [ROOT / n for n in names if (ROOT / n).is_file()]
    return {str(p.relative_to(ROOT)) for p in seen}


def test_stage_code_deps_are_exactly_what_the_script_imports():
    """A stage re-runs when, and only when, code it runs changes: its .py deps are the import
    closure of its script (a stale dep re-runs it for nothing, a missing one leaves it stale)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in sorted(stages.items()):
        body = stage.get("do", stage)
        script = body["cmd"].split()[1]
        listed = {d for d in body["deps"] if d.endswith(".py")}
        assert listed == imported_modules(ROOT / script), name


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
