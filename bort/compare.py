"""Compare two runs: each model's task and suite scores in run A and in run B, the difference
B - A with its 95% interval, and a paired test on the same held-out units -- the significance
stage's method (bort.significance), applied across runs instead of across models.

  python -m bort.compare HEAD~1 HEAD                  # two git revisions
  python -m bort.compare exp-epochs1 exp-epochs2      # two DVC experiments (`dvc exp show` names)
  python -m bort.compare ../run-a ../run-b --json     # two project folders; JSON for machines

Where the predictions come from. Every run's held-out predictions
(models/finetune/<model>/<task>/seed-<s>/heldout.json, and models/diagnostics/...) are DVC
outputs: in a DVC cache, not in git, so nothing promises that two commits are comparable in a
fresh clone (a cache holds what ran on this machine or what someone pushed). The held-out
predictions of a run are small, so the significance stage, which reads all of them anyway, also
writes them to one compact file, metrics/predictions.json (PREDICTIONS_FILE), that git carries
(`cache: false` in dvc.yaml). Every commit and every DVC experiment -- DVC 3 commits an
experiment's git-tracked files under refs/exps/<baseline[:2]>/<baseline[2:]>/<name> -- then
holds what a comparison needs, and `compare` reads it with `git show <rev>:metrics/predictions.json`
without running anything. For each scored set the file holds:

- `predictions`: model -> seed -> the held-out predictions in held-out order (floats rounded to
  6 places, as the metrics are);
- `gold`: the gold labels (ReCoRD: the gold answers), and `units` where a resampling unit is not
  one row (MultiRC's question, AX-g's pair; bort.significance.unit_keys), so the runs can be scored
  and paired without the data;
- `digest`: sha256 of every held-out row's inputs and gold, so that two runs whose held-out rows
  differ (a changed `data` section, finetune.heldout, or input files) are refused: a paired test
  compares two runs' predictions on the same units, and there are no same units to compare.

The rules, stated:
- A and B are each a project folder (an existing directory: its metrics/predictions.json and
  params.yaml), else a git revision of --repo, else a DVC experiment name (resolved as
  `dvc exp` does: a name under refs/exps, the experiment of HEAD's baseline where several share it).
- Seeds: the comparison pools the seeds both runs have; a seed in one run only is dropped and
  named (so A's and B's scores here may differ from their own reports); no common seed is an error.
- Sets: a set in one run only is listed and skipped; a suite score is over the sets both runs
  have (and says so when that is fewer than either run's).
- Held-out rows that differ in any set: an error (exit 2) that names the sets and the params.yaml
  keys deciding the rows (`data`, `finetune.heldout`) that differ between A and B.
- Intervals and tests: params.yaml `significance` of the project you run it in (--params):
  the interval is the bootstrap of the difference on the same resampled units (bort.significance.
  interval over a `Difference`), the test bort.significance.paired_test of B against A. A cell
  whose predictions are the same in A and B is not resampled: its B - A is 0 on every resample,
  so the method's answer is the interval [0, 0] and p = 1.
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import yaml
from tqdm import tqdm

from bort import significance as S
from bort import tasks
from bort.errors import BortError, cli_main, setup_logging
from bort.io import rounded
from bort.params import PARAMS_FILE
from bort.predictions import PREDICTIONS_FILE, instances

log = logging.getLogger("compare")

#: the params.yaml keys that decide the held-out rows (prepare stage, bort.finetune.heldout)
ROW_KEYS = ("data", "finetune.heldout")
SHORT_NAMES = {"bert": "BERT", "bort": "Bort", "bort-agora": "Bort + Agora"}
#: namespaces under refs/exps that are not experiments (dvc/repo/experiments/refs.py)
_NOT_EXPERIMENTS = ("refs/exps/apply", "refs/exps/celery", "refs/exps/exec", "refs/exps/temp",
                    "refs/exps/stash")


# --- where a run is ---------------------------------------------------------------------------------

class Run:
    """One side of a comparison: its predictions file and params.yaml, and where they came from."""

    def __init__(self, spec: str, where: str, predictions: dict, params: Optional[dict]):
        self.spec, self.where, self.predictions, self.params = spec, where, predictions, params

    @property
    def seeds(self) -> List[int]:
        return list(self.predictions.get("seeds", []))

    @property
    def sets(self) -> Dict[str, dict]:
        return self.predictions.get("sets", {})


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    except FileNotFoundError:
        raise BortError("git: not found; a revision or an experiment is read with git") from None


def _experiment_ref(repo: Path, name: str) -> Optional[str]:
    """The git ref of DVC experiment `name` (refs/exps/<sha[:2]>/<sha[2:]>/<name>), chosen as
    `dvc exp` chooses (dvc/repo/experiments/utils.py, resolve_name): the only one, or the one
    whose baseline is HEAD."""
    listed = _git(repo, "for-each-ref", "--format=%(refname)", "refs/exps")
    refs = [r for r in listed.stdout.split() if r.count("/") == 4 and not r.startswith(_NOT_EXPERIMENTS)
            and r.rsplit("/", 1)[1] == name]
    if len(refs) <= 1:
        return refs[0] if refs else None
    head = _git(repo, "rev-parse", "HEAD").stdout.strip()
    for ref in refs:
        if "".join(ref.split("/")[2:4]) == head:
            return ref
    raise BortError(f"{name}: several DVC experiments have this name ({', '.join(refs)}); "
                    "expected one of these refs instead of the name")


def _parse(text: str, where: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BortError(f"{where}: not JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("sets"), dict):
        raise BortError(f"{where}: expected the significance stage's predictions file (keys seeds, sets)")
    return data


def _params(text: Optional[str]) -> Optional[dict]:
    try:
        data = yaml.safe_load(text) if text is not None else None
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def load_run(spec: str, repo: Path) -> Run:
    """A project folder, a git revision of `repo`, or a DVC experiment name (that order)."""
    folder = Path(spec)
    if folder.is_dir():
        path = folder / PREDICTIONS_FILE
        if not path.is_file():
            raise BortError(f"{path}: missing; expected the significance stage's predictions of this folder's run "
                            "(run `dvc pull` there if its runs are in a remote, then `dvc repro significance`)")
        params = folder / PARAMS_FILE
        return Run(spec, str(folder), _parse(path.read_text(encoding="utf-8"), str(path)),
                   _params(params.read_text(encoding="utf-8") if params.is_file() else None))
    if _git(repo, "rev-parse", "--git-dir").returncode != 0:
        raise BortError(f"{spec}: not a folder, and {repo} is not a git repository to read a revision or "
                        "an experiment from (see --repo)")
    commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}").stdout.strip()
    ref = None
    if not commit:
        ref = _experiment_ref(repo, spec)
        if ref is None:
            raise BortError(f"{spec}: not a folder, a git revision or a DVC experiment name in {repo} "
                            "(`dvc exp list --all-commits` lists the experiments; `dvc exp pull` fetches them)")
        commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").stdout.strip()
    prefix = _git(repo, "rev-parse", "--show-prefix").stdout.strip()
    where = f"{spec} ({ref + ' @ ' if ref else ''}{commit[:7]})"
    shown = _git(repo, "show", f"{commit}:{prefix}{PREDICTIONS_FILE}")
    if shown.returncode != 0:
        raise BortError(f"{where}: no {PREDICTIONS_FILE} in this revision (committed before the significance "
                        "stage wrote it, or without the significance stage's outputs); expected a commit of a "
                        "run: check it out (`dvc exp apply` for an experiment), `dvc pull`, `dvc repro "
                        "significance`, and compare the folder")
    params = _git(repo, "show", f"{commit}:{prefix}{PARAMS_FILE}")
    return Run(spec, where, _parse(shown.stdout, f"{where}:{PREDICTIONS_FILE}"),
               _params(params.stdout if params.returncode == 0 else None))


# --- the comparison ---------------------------------------------------------------------------------

class Difference:
    """Run B's score minus run A's on the same resample of the same held-out units, so that
    bort.significance.interval bootstraps the difference as a paired statistic (the units drawn
    once, both runs scored on them); it has what `interval` reads: n_units and score(idx)."""

    def __init__(self, b: S.Scored, a: S.Scored):
        b.paired_with(a)                                 # the same task, units and number of seeds
        self.b, self.a, self.n_units = b, a, a.n_units

    def score(self, idx: np.ndarray) -> np.ndarray:
        return self.b.score(idx) - self.a.score(idx)


def _dotted(params: Optional[dict], key: str):
    value = params
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _why_rows_differ(a: Run, b: Run) -> str:
    """Which of the params.yaml keys that decide the held-out rows differ between A and B."""
    if a.params is None or b.params is None:
        return "a params.yaml is missing, so the cause is unknown"
    changed = []
    for key in ROW_KEYS:
        va, vb = _dotted(a.params, key), _dotted(b.params, key)
        if isinstance(va, dict) and isinstance(vb, dict):
            changed += [f"{key}.{k} ({va.get(k)!r} -> {vb.get(k)!r})" for k in sorted(set(va) | set(vb), key=str)
                        if va.get(k) != vb.get(k)]
        elif va != vb:
            changed.append(f"{key} ({va!r} -> {vb!r})")
    if changed:
        return "params.yaml differs in " + ", ".join(changed)
    return ("params.yaml's " + " and ".join(f"`{k}`" for k in ROW_KEYS) + " are equal, so the input files "
            "or the code that generates or splits them changed")


def same_predictions(x: S.Scored, y: S.Scored) -> bool:
    """The same per-unit statistics in every seed: y's score equals x's on every resample."""
    return x.parts.keys() == y.parts.keys() and all(np.array_equal(x.parts[k], y.parts[k]) for k in x.parts)


def _entry(b: Sequence[S.Scored], a: Sequence[S.Scored], cfg: S.SignificanceConfig) -> dict:
    """A's and B's score (mean over `a`/`b`: one task, or a suite's tasks), B - A, its interval and
    the paired test. Where every task's predictions are the same in A and B, B - A is 0 on every
    resample and every permutation, so the method's answer is known without resampling: the
    interval [0, 0] and p = 1 (tests/test_compare.py checks it against bort.significance)."""
    everything = [np.arange(s.n_units) for s in a]
    if all(same_predictions(x, y) for x, y in zip(a, b)):
        score = float(np.mean([s.score(i) for s, i in zip(a, everything)]))
        return {"a": score, "b": score, "difference": 0.0, "low": 0.0, "high": 0.0, "p_value": 1.0,
                "significant": False, "same_predictions": True}
    interval = S.interval([Difference(y, x) for x, y in zip(a, b)], cfg)
    test = S.paired_test(list(b), list(a), cfg)
    return {"a": float(np.mean([s.score(i) for s, i in zip(a, everything)])),
            "b": float(np.mean([s.score(i) for s, i in zip(b, everything)])),
            "difference": test["difference"], "low": interval["low"], "high": interval["high"],
            "p_value": test["p_value"], "significant": test["significant"], "same_predictions": False}


def compare(a: Run, b: Run, cfg: S.SignificanceConfig) -> dict:
    """The comparison as one JSON-able record (the Markdown table is drawn from it)."""
    seeds = sorted(set(a.seeds) & set(b.seeds))
    if not seeds:
        raise BortError(f"no seed in common: A has seeds {a.seeds}, B has {b.seeds}; a paired comparison needs "
                        "the same seeds' runs")
    dropped = {"a": sorted(set(a.seeds) - set(seeds)), "b": sorted(set(b.seeds) - set(seeds))}
    if dropped["a"] or dropped["b"]:
        log.warning("seeds differ (A %s, B %s): comparing over the common seeds %s", a.seeds, b.seeds, seeds)
    skipped = {name: "A only" for name in a.sets if name not in b.sets}
    skipped.update({name: "B only" for name in b.sets if name not in a.sets})
    common = [t for t in tasks.TASKS.values() if t.name in a.sets and t.name in b.sets]
    skipped.update({name: "not a task of this version's registry (bort.tasks)" for name in a.sets
                    if name in b.sets and name not in tasks.TASKS})
    if skipped:
        log.warning("skipped: %s", ", ".join(f"{name} ({why})" for name, why in sorted(skipped.items())))
    if not common:
        raise BortError(f"no scored set in common between A ({', '.join(sorted(a.sets)) or 'none'}) and "
                        f"B ({', '.join(sorted(b.sets)) or 'none'})")
    differ = [t.name for t in common
              if any(a.sets[t.name].get(k) != b.sets[t.name].get(k) for k in ("digest", "gold", "units"))]
    if differ:
        raise BortError(f"the held-out rows differ between A and B in {len(differ)} set(s) ({', '.join(differ)}): "
                        f"a paired test needs both runs' predictions on the same held-out units, so none is "
                        f"possible; {_why_rows_differ(a, b)}")

    def scored(run: Run, task, model: str) -> S.Scored:
        record = run.sets[task.name]
        missing = [s for s in seeds if str(s) not in record["predictions"][model]]
        if missing:
            raise BortError(f"{run.where}: {task.name}, {model}: no predictions of seed(s) {missing}, which the "
                            f"file's seeds list names")
        return S.Scored(task, instances(task, record), [record["predictions"][model][str(s)] for s in seeds])

    out = {"a": a.where, "b": b.where, "seeds": seeds, "seeds_dropped": dropped, "skipped": skipped,
           "config": {"resamples": cfg.resamples, "confidence": cfg.confidence, "alpha": cfg.alpha,
                      "seed": cfg.seed, "interval": "bootstrap percentile of B - A, paired (same units)",
                      "test": "approximate randomisation (paired, two-sided)"},
           "tasks": {}, "suites": {}}
    runs = {}
    for task in tqdm(common, desc="compare", unit="set", file=sys.stderr):
        models_a, models_b = set(a.sets[task.name]["predictions"]), set(b.sets[task.name]["predictions"])
        models = [m for m in sorted(models_a & models_b, key=_model_order)]
        runs[task.name] = {m: (scored(a, task, m), scored(b, task, m)) for m in models}
        record = {"units": runs[task.name][models[0]][0].n_units if models else 0,
                  "models": {m: _entry([runs[task.name][m][1]], [runs[task.name][m][0]], cfg) for m in models}}
        if models_a ^ models_b:
            record["models_skipped"] = sorted(models_a ^ models_b)
        out["tasks"][task.name] = record
    for suite in tasks.SUITES:
        members = [t.name for t in tasks.suite_tasks(suite) if not t.is_diagnostic and t.name in runs]
        if not members:
            continue
        either = [t.name for t in tasks.suite_tasks(suite) if not t.is_diagnostic and
                  (t.name in a.sets or t.name in b.sets)]
        models = [m for m in runs[members[0]] if all(m in runs[t] for t in members)]
        out["suites"][suite] = {"tasks": members, "left_out": [t for t in either if t not in members],
                                "models": {m: _entry([runs[t][m][1] for t in members],
                                                     [runs[t][m][0] for t in members], cfg) for m in models}}
    changes = [[kind, name, m] for kind in ("suites", "tasks") for name, rec in out[kind].items()
               for m, e in rec["models"].items() if e["significant"]]
    out["significant"] = {"count": len(changes), "of": sum(len(r["models"]) for k in ("suites", "tasks")
                                                           for r in out[k].values()), "changes": changes}
    return out


def _model_order(model: str):
    return (list(SHORT_NAMES).index(model) if model in SHORT_NAMES else len(SHORT_NAMES), model)


# --- output -----------------------------------------------------------------------------------------

def _pct(value: float, signed: bool = False) -> str:
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


def _rows(records: Dict[str, dict], label) -> List[str]:
    lines = []
    for name, rec in records.items():
        for model, e in rec["models"].items():
            lines.append(f"| {label(name)} | {SHORT_NAMES.get(model, model)} | {_pct(e['a'])} | {_pct(e['b'])} | "
                         f"{_pct(e['difference'], True)} | [{_pct(e['low'], True)}, {_pct(e['high'], True)}] | "
                         f"{e['p_value']:.4f} | {'**yes**' if e['significant'] else 'no'} |")
    return lines


def markdown(out: dict) -> str:
    """The comparison as Markdown: what was compared, the count of significant changes, one table
    of suite scores and one of task scores (scores x 100), and what was left out."""
    cfg = out["config"]
    suite_label = {s.name: s.label for s in tasks.SUITES.values()}
    seeds = ", ".join(str(s) for s in out["seeds"])
    header = "| {} | model | A | B | B − A | {:.0%} interval | p | significant |\n|---|---|---:|---:|---:|---|---:|---|"
    sig = out["significant"]
    by_kind = {k: (sum(e["significant"] for r in out[k].values() for e in r["models"].values()),
                   sum(len(r["models"]) for r in out[k].values())) for k in ("suites", "tasks")}
    listed = ", ".join(f"{suite_label.get(n, n) if k == 'suites' else n} {SHORT_NAMES.get(m, m)} "
                       f"({_pct(out[k][n]['models'][m]['difference'], True)})" for k, n, m in sig["changes"])
    lines = [f"# Comparison: A = {out['a']}, B = {out['b']}", "",
             f"B − A for every model, scores x 100; seeds {seeds} pooled; {cfg['confidence']:.0%} paired bootstrap "
             f"interval of the difference over held-out units ({cfg['resamples']:,} resamples); approximate "
             f"randomisation test on the same units, two-sided, α = {cfg['alpha']}, no correction for the number "
             f"of tests (bort.significance). A cell whose predictions are the same in A and B is not resampled: its "
             f"B − A is 0 on every resample (interval [0, 0], p = 1).", "",
             f"**Significant changes: {sig['count']} of {sig['of']}** (suite scores {by_kind['suites'][0]} of "
             f"{by_kind['suites'][1]}, task scores {by_kind['tasks'][0]} of {by_kind['tasks'][1]})"
             + (f": {listed}." if listed else "."), ""]
    if out["suites"]:
        lines += ["## Suites", "", header.format("suite", cfg["confidence"])]
        lines += _rows(out["suites"], lambda n: suite_label.get(n, n))
        left_out = [n for n, r in out["suites"].items() if r["left_out"]]
        lines += [""] if left_out else []
        lines += [f"- {suite_label.get(n, n)} is over the sets both runs have; left out: {', '.join(r['left_out'])}."
                  for n, r in out["suites"].items() if r["left_out"]]
        lines.append("")
    lines += ["## Tasks", "", header.format("task", cfg["confidence"])]
    lines += _rows(out["tasks"], lambda n: n)            # registry names: GLUE's RTE and SuperGLUE-RTE
    notes = ["- Skipped, in one run only: " + ", ".join(f"{n} ({why})" for n, why in sorted(out["skipped"].items()))
             + "."] if out["skipped"] else []
    for who in ("a", "b"):
        if out["seeds_dropped"][who]:
            notes.append(f"- Seeds of {who.upper()} only, left out: {out['seeds_dropped'][who]}.")
    notes += [f"- {n}: models in one run only, skipped: {', '.join(r['models_skipped'])}."
              for n, r in out["tasks"].items() if r.get("models_skipped")]
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    first, _, rest = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(prog="python -m bort.compare", description=" ".join(first.split()),
                                     epilog=rest.strip(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="run A (the baseline): a project folder, a git revision or a DVC experiment name")
    parser.add_argument("b", help="run B, compared with A (differences are B - A)")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON instead of Markdown")
    parser.add_argument("--repo", type=Path, default=Path("."),
                        help="the git repository revisions and experiments are read from (default: .)")
    parser.add_argument("--params", type=Path, default=PARAMS_FILE,
                        help="the params.yaml whose `significance` section sets resamples, confidence, alpha "
                             "and seed (default: ./params.yaml)")
    args = parser.parse_args(argv)
    setup_logging()
    cfg = S.SignificanceConfig.load("significance", args.params)
    out = compare(load_run(args.a, args.repo), load_run(args.b, args.repo), cfg)
    if args.json:
        print(json.dumps(rounded(out), indent=1, sort_keys=True))
    else:
        print(markdown(out), end="")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
