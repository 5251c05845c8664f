"""bort.compare: the table's difference, interval and test are bort.significance's on the same units;
identical runs show no significant change; differing held-out rows, a missing predictions file and
no common seed end in one line and exit 2; a set in one run only is listed and skipped; a git
revision and a DVC experiment ref are read through git."""
import json
import subprocess

import numpy as np
import pytest
import yaml
from scipy import stats

from bort import compare as C
from bort import predictions as P
from bort import significance as S
from bort import tasks as T
from bort.errors import cli_main
from bort.finetune import MODELS

CFG = S.SignificanceConfig(resamples=199, confidence=0.95, alpha=0.05, seed=0)
SETS = ("CoLA", "SST-2", "MRPC", "MultiRC", "BoolQ")
N = 60


def rows(name, data_seed=0):
    """N held-out rows of a task: random gold, MultiRC's questions of 3 answers each."""
    task = T.get_task(name)
    rng = np.random.RandomState(data_seed * 1000 + SETS.index(name))
    return [{"text_a": f"{name} row {k} ({data_seed})", "group": f"q{k // 3}", "label": int(rng.randint(len(task.labels)))}
            for k in range(N)]


def runs_of(name, held, seeds, draw=0, perfect=()):
    """model -> every seed's predictions, each right with probability 0.7 (always, for models in
    `perfect`); `draw` picks the random draw."""
    task = T.get_task(name)
    out = {}
    for j, model in enumerate(MODELS):
        rng = np.random.RandomState(draw * 100 + j * 10 + SETS.index(name))
        out[model] = [[r["label"] if model in perfect or rng.rand() < 0.7 else int(rng.randint(len(task.labels)))
                       for r in held] for _ in seeds]
    return out


def write_run(folder, sets=SETS, seeds=(0, 1, 2), data_seed=0, perfect=None):
    """A project folder as the significance stage leaves it: metrics/predictions.json, params.yaml.
    `perfect`: set -> the models whose predictions are all right there."""
    records = {}
    for name in sets:
        held = rows(name, data_seed)
        records[name] = P.heldout_record(T.get_task(name), held,
                                         runs_of(name, held, seeds, perfect=(perfect or {}).get(name, ())), seeds)
    P.write_predictions(folder / P.PREDICTIONS_FILE, seeds, records)
    (folder / "params.yaml").write_text(yaml.safe_dump({"data": {"seed": data_seed, "noise": 0.05},
                                                        "finetune": {"heldout": "auto"}}))
    return folder


@pytest.fixture
def params(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"significance": {"resamples": CFG.resamples, "confidence": CFG.confidence,
                                                     "alpha": CFG.alpha, "seed": CFG.seed}}))
    return str(path)


def run_cli(capsys, *argv):
    code = cli_main(C.main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def scored(folder, name, model, seeds=(0, 1, 2)):
    """The model's Scored read back from the folder's file, as a direct bort.significance input."""
    record = json.loads((folder / P.PREDICTIONS_FILE).read_text())["sets"][name]
    task = T.get_task(name)
    return S.Scored(task, P.instances(task, record), [record["predictions"][model][str(s)] for s in seeds])


def test_a_known_difference_is_bort_significance_on_the_same_units(tmp_path, params, capsys):
    a = write_run((tmp_path / "a"))
    b = write_run((tmp_path / "b"), perfect={"SST-2": ("bort",)})       # B: Bort right on every SST-2 row
    code, out, _ = run_cli(capsys, str(a), str(b), "--json", "--params", params)
    assert code == 0
    result = json.loads(out)
    sa, sb = scored(a, "SST-2", "bort"), scored(b, "SST-2", "bort")
    entry = result["tasks"]["SST-2"]["models"]["bort"]
    test = S.paired_test([sb], [sa], CFG)
    everything = np.arange(N)
    paired = stats.bootstrap((everything,), lambda i, axis=-1: sb.score(i) - sa.score(i), n_resamples=CFG.resamples,
                             batch=S.BATCH, vectorized=True, confidence_level=CFG.confidence, method="percentile",
                             rng=np.random.default_rng(CFG.seed))
    assert entry["a"] == pytest.approx(float(sa.score(everything)), abs=1e-6)
    assert entry["b"] == pytest.approx(1.0)
    assert entry["difference"] == pytest.approx(test["difference"], abs=1e-6)
    assert entry["difference"] == pytest.approx(entry["b"] - entry["a"], abs=1e-5)
    assert entry["difference"] > 0.1                  # about 0.15: from 0.7 + 0.3 / 2 (a wrong draw hits) to 1.0
    assert entry["p_value"] == pytest.approx(test["p_value"]) and entry["significant"]
    assert entry["low"] == pytest.approx(paired.confidence_interval.low, abs=1e-6)
    assert entry["high"] == pytest.approx(paired.confidence_interval.high, abs=1e-6)
    assert 0 < entry["low"] < entry["difference"] < entry["high"] and not entry["same_predictions"]
    assert result["tasks"]["CoLA"]["models"]["bort"]["same_predictions"]
    glue = ["CoLA", "SST-2", "MRPC"]                                    # GLUE: the suite's sets in both runs
    assert result["suites"]["glue"]["tasks"] == glue
    suite = S.paired_test([scored(b, t, "bort") for t in glue], [scored(a, t, "bort") for t in glue], CFG)
    assert result["suites"]["glue"]["models"]["bort"]["difference"] == pytest.approx(suite["difference"], abs=1e-6)
    assert result["suites"]["glue"]["models"]["bort"]["p_value"] == pytest.approx(suite["p_value"])
    assert result["significant"]["count"] == 2                          # the task and its suite, nothing else
    assert result["significant"]["changes"] == [["suites", "glue", "bort"], ["tasks", "SST-2", "bort"]]
    assert result["significant"]["of"] == 3 * (len(SETS) + 2)
    code, out, _ = run_cli(capsys, str(a), str(b), "--params", params)
    assert code == 0 and "**Significant changes: 2 of 21**" in out
    assert f"| SST-2 | Bort | {100 * entry['a']:.1f} | 100.0 | {100 * entry['difference']:+.1f} |" in out


def test_identical_runs_have_no_significant_change(tmp_path, params, capsys):
    a, b = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    code, out, _ = run_cli(capsys, str(a), str(b), "--json", "--params", params)
    result = json.loads(out)
    assert code == 0 and result["significant"]["count"] == 0 and not result["skipped"]
    for kind in ("tasks", "suites"):
        for record in result[kind].values():
            for entry in record["models"].values():
                assert entry["difference"] == 0 and entry["low"] == entry["high"] == 0 and entry["p_value"] == 1
                assert entry["same_predictions"] and entry["a"] == entry["b"]
    # not resampled, and what bort.significance gives on the same predictions
    x, y = scored(a, "MultiRC", "bort"), scored(b, "MultiRC", "bort")
    assert S.paired_test([y], [x], CFG) == {"difference": 0.0, "p_value": 1.0, "significant": False}
    interval = S.interval([C.Difference(y, x)], CFG)
    assert interval["score"] == interval["low"] == interval["high"] == 0.0


def test_different_heldout_rows_refuse_the_paired_test(tmp_path, params, capsys):
    a, b = write_run(tmp_path / "a"), write_run(tmp_path / "b", data_seed=1)
    code, out, err = run_cli(capsys, str(a), str(b), "--params", params)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: the held-out rows differ between A and B in 5 set(s)")
    assert "a paired test needs both runs' predictions on the same held-out units" in err
    assert "data.seed (0 -> 1)" in err


def test_a_set_in_one_run_only_is_listed_and_skipped(tmp_path, params, capsys):
    a, b = write_run(tmp_path / "a"), write_run(tmp_path / "b", sets=SETS[:-1])     # B has no BoolQ
    code, out, _ = run_cli(capsys, str(a), str(b), "--json", "--params", params)
    result = json.loads(out)
    assert code == 0 and result["skipped"] == {"BoolQ": "A only"} and "BoolQ" not in result["tasks"]
    assert result["suites"]["superglue"]["tasks"] == ["MultiRC"]
    assert result["suites"]["superglue"]["left_out"] == ["BoolQ"]
    code, out, _ = run_cli(capsys, str(a), str(b), "--params", params)
    assert "- Skipped, in one run only: BoolQ (A only)." in out
    assert "- SuperGLUE is over the sets both runs have; left out: BoolQ." in out


def test_seeds_are_the_common_ones_and_none_in_common_is_refused(tmp_path, params, capsys):
    a, b = write_run(tmp_path / "a"), write_run(tmp_path / "b", seeds=(0, 1))
    code, out, _ = run_cli(capsys, str(a), str(b), "--json", "--params", params)
    result = json.loads(out)
    assert code == 0 and result["seeds"] == [0, 1] and result["seeds_dropped"] == {"a": [2], "b": []}
    entry = result["tasks"]["CoLA"]["models"]["bert"]
    assert entry["a"] == pytest.approx(float(scored(a, "CoLA", "bert", (0, 1)).score(np.arange(N))), abs=1e-6)
    c = write_run(tmp_path / "c", seeds=(5,))
    code, _, err = run_cli(capsys, str(a), str(c), "--params", params)
    assert code == 2 and err.count("\n") == 1 and "no seed in common" in err


def test_the_predictions_file_is_compact_and_deterministic(tmp_path):
    a, b = write_run(tmp_path / "a"), write_run(tmp_path / "b")
    text = (a / P.PREDICTIONS_FILE).read_text()
    assert text == (b / P.PREDICTIONS_FILE).read_text()
    data = json.loads(text)
    assert data["seeds"] == [0, 1, 2] and sorted(data["sets"]) == sorted(SETS)
    assert data["sets"]["MultiRC"]["units"][:4] == ["q0", "q0", "q0", "q1"] and "units" not in data["sets"]["CoLA"]
    assert data["sets"]["CoLA"]["digest"].startswith("sha256:")
    lines = text.splitlines()                            # one line per list: seeds, and per set gold + 9 runs
    assert len([line for line in lines if line.rstrip(",").endswith("]")]) == 1 + len(SETS) * (1 + 9) + 1


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
                   cwd=repo, check=True, capture_output=True)


def test_revisions_and_experiments_are_read_through_git(tmp_path, params, capsys):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README").write_text("no run yet\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "before the predictions file")
    write_run(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "run A")
    write_run(repo, perfect={"SST-2": ("bort",)})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "run B")
    code, out, _ = run_cli(capsys, "HEAD~1", "HEAD", "--repo", str(repo), "--json", "--params", params)
    by_git = json.loads(out)
    assert code == 0 and by_git["a"].startswith("HEAD~1 (") and by_git["b"].startswith("HEAD (")
    write_run(tmp_path / "a")
    write_run(tmp_path / "b", perfect={"SST-2": ("bort",)})
    code, out, _ = run_cli(capsys, str(tmp_path / "a"), str(tmp_path / "b"), "--json", "--params", params)
    by_folder = json.loads(out)
    assert {k: v for k, v in by_git.items() if k not in "ab"} == {k: v for k, v in by_folder.items() if k not in "ab"}
    # a DVC 3 experiment: refs/exps/<baseline[:2]>/<baseline[2:]>/<name>, here on run A's commit
    baseline = subprocess.run(["git", "rev-parse", "HEAD~1"], cwd=repo, capture_output=True, text=True).stdout.strip()
    git(repo, "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/exp-perfect", "HEAD")
    code, out, _ = run_cli(capsys, "HEAD~1", "exp-perfect", "--repo", str(repo), "--json", "--params", params)
    assert code == 0 and "refs/exps/" in json.loads(out)["b"] and json.loads(out)["significant"]["count"] == 2
    code, out, err = run_cli(capsys, "HEAD~2", "HEAD", "--repo", str(repo), "--params", params)
    assert code == 2 and err.count("\n") == 1 and "no metrics/predictions.json in this revision" in err
    code, out, err = run_cli(capsys, "no-such-run", "HEAD", "--repo", str(repo), "--params", params)
    assert code == 2 and "not a folder, a git revision or a DVC experiment name" in err


def test_help_says_where_the_predictions_come_from(capsys):
    with pytest.raises(SystemExit) as done:
        C.main(["--help"])
    assert done.value.code == 0
    assert "git show <rev>:metrics/predictions.json" in capsys.readouterr().out
