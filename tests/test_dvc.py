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
                  "finetune@RACE-high", "diagnostics", "significance", "int8", "time", "report"):
        assert stage in out, stage


def _files_of(module: str) -> list:
    """The files importing `module` (bort.x.y) executes: each subpackage's __init__.py and the module
    (the root bort/__init__.py is an empty namespace and is left out)."""
    parts = module.split(".")
    out = []
    for k in range(2, len(parts) + 1):
        base = ROOT.joinpath(*parts[:k])
        if (base / "__init__.py").is_file():
            out.append(base / "__init__.py")
        elif base.with_suffix(".py").is_file():
            out.append(base.with_suffix(".py"))
    return out


def imported_modules(script: Path) -> set:
    """Every bort/ file a script reaches through imports, function-level ones included."""
    todo, seen = [script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bort":
                modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names if a.name.startswith("bort.")]
            for module in modules:
                todo += _files_of(module)
    return {str(p.relative_to(ROOT)) for p in seen}


def code_deps(deps) -> set:
    """A stage's code deps, a package folder standing for all its .py files."""
    out = set()
    for dep in deps:
        if (ROOT / dep).is_dir() and dep.startswith("bort/"):
            out |= {str(p.relative_to(ROOT)) for p in (ROOT / dep).glob("*.py")}
        elif dep.endswith(".py"):
            out.add(dep)
    return out


def test_stage_code_deps_are_exactly_what_the_script_imports():
    """A stage re-runs when, and only when, code it runs changes: its code deps are the import
    closure of its script (a stale dep re-runs it for nothing, a missing one leaves it stale)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in sorted(stages.items()):
        body = stage.get("do", stage)
        script = body["cmd"].split()[1]
        assert code_deps(body["deps"]) == imported_modules(ROOT / script), name


def test_every_path_a_stage_names_in_its_command_is_declared():
    """dvc.yaml `cmd` names every path; each is a dep, an out or a metric of that stage."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in sorted(stages.items()):
        body = stage.get("do", stage)
        declared = set(body.get("deps", []))
        for key in ("outs", "metrics"):
            declared |= {next(iter(o)) if isinstance(o, dict) else o for o in body.get(key, [])}
        words = body["cmd"].split()
        paths = [w for prev, w in zip(words, words[1:]) if prev.startswith("--")]
        undeclared = [p for p in paths if p not in declared and not any(d.startswith(p + "/") for d in declared)]
        assert not undeclared, (name, undeclared)


def test_the_task_list_is_written_once():
    """params.yaml `tasks` drives the per-task stages; dvc.yaml names no task."""
    text = (ROOT / "dvc.yaml").read_text()
    assert text.count("foreach: ${tasks}") == 1 and "CoLA" not in text


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
