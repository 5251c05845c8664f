"""pipeline/check_determinism.py --compare: two runs' conclusions (significance verdicts, suite
scores at 0.1 points) are the same or listed as different; moved cells alone do not fail it."""
import importlib.util
import json

from conftest import ROOT

spec = importlib.util.spec_from_file_location("check_determinism", ROOT / "pipeline" / "check_determinism.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


def record(bort_score=0.60, significant=True, suite=0.7012):
    test = {"difference": 0.1, "p_value": 0.01 if significant else 0.3, "significant": significant}
    cell = {"score": bort_score, "low": 0.5, "high": 0.7}
    models = {m: dict(cell) for m in check.MODELS}
    return {"tasks": {"RTE": dict(models, bert_vs_bort=test, agora_vs_bort=test)},
            "suites": {"glue": {**{m: dict(cell, score=suite) for m in check.MODELS}, "tasks": ["RTE"],
                                "bert_vs_bort": test, "agora_vs_bort": test}}}


def write(root, data):
    path = root / check.SIGNIFICANCE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))


def run(root, monkeypatch, ours, theirs, capsys):
    write(root / "a", ours)
    write(root / "b", theirs)
    monkeypatch.chdir(root / "a")
    code = check.main(["--compare", str(root / "b")])
    return code, capsys.readouterr().out


def test_same_conclusions_pass_even_when_a_cell_moves(tmp_path, monkeypatch, capsys):
    code, out = run(tmp_path, monkeypatch, record(), record(bort_score=0.63, suite=0.70104), capsys)
    assert code == 0 and "cell moved (information): RTE bort" in out


def test_a_verdict_or_a_printed_suite_score_that_moves_fails(tmp_path, monkeypatch, capsys):
    code, out = run(tmp_path, monkeypatch, record(), record(significant=False), capsys)
    assert code == 1 and "tasks/RTE/bert_vs_bort" in out
    code, out = run(tmp_path / "suite", monkeypatch, record(), record(suite=0.7051), capsys)
    assert code == 1 and "suites/glue/bort: 70.1 here, 70.5 there" in out
