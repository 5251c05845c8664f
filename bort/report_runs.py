"""The tables of how the runs were made, regenerated from metrics/: the fine-tuning settings chosen
on dev, the learnability witness beside the models' cells, and every Agora round (bort.agora).
They say whether a cell measures learning (issue 22) and what Agora did to reach it (issue 23);
the task-score tables themselves are bort.report's."""
from __future__ import annotations

from typing import Dict, Optional

from bort import tasks as T
from bort.finetune import MODELS
from bort.report import MODEL_NAMES, pct


def settings_rows(finetune: Dict[str, Dict[str, dict]]):
    """Per task, each searched model's grid with its Agora-dev task scores (the chosen point in
    bold), the decision thresholds fitted on dev, and the held-out rows the split rules dropped."""
    header = ["task", "model", "settings tried: Agora-dev task score (first seed, at the rung)", "chosen",
              "decision threshold per seed", "held-out rows dropped (input in training / in Agora's dev)"]
    rows = []
    for task in T.TASKS.values():
        for model in MODELS[:2]:
            result = finetune.get(model, {}).get(task.name)
            if not result:
                continue
            search = result.get("settings_search", {})
            tried = "; ".join(("**{}**" if c["setting"] == search["chosen"] else "{}").format(
                f"{_setting(c['setting'])}: {pct(c['agora_dev_task_score'])}") for c in search.get("candidates", []))
            thresholds = [r["decision"]["threshold"] for r in result["runs"] if "decision" in r]
            split = result.get("heldout_split", {})
            rows.append([task.label, MODEL_NAMES[model], tried or "(no search)",
                         _setting(search["chosen"]) if search else "params.yaml",
                         ", ".join(f"{t:.3f}" for t in thresholds) or "argmax",
                         f"{split.get('dropped_train_overlap', 0)} / {split.get('dropped_dev_overlap', 0)}"])
    return header, rows


def witness_rows(witness: Optional[dict], finetune: Dict[str, Dict[str, dict]], significance: dict):
    """The learnability witness (bort.witness) beside the models' cells, per witnessed task, with
    the verdict the measurements allow: learnable when the witness's interval -- or any model's --
    lies above the floor and the majority class; at chance by construction when the witness fits
    its training rows and still is not; unknown when nothing fits them (training loss near that
    of a uniform guess) and no model is above chance, because then the witness measures its own
    set-up, not the task."""
    import math
    header = ["task", "witness: source fully fine-tuned [95% interval]", "its last training loss", "TF-IDF floor",
              "majority", "BERT / Bort / Bort + Agora [lowest interval end]", "learnable from its training rows"]
    rows = []
    for name in [n for n in T.TASKS if n in (witness or {}).get("tasks", {})]:
        task, r = T.TASKS[name], witness["tasks"][name]
        ref = max([v for v in (r.get("floor"), r.get("majority")) if v is not None], default=None)
        cells = significance.get("tasks", {}).get(name, {})
        above = [MODEL_NAMES[m] for m in MODELS if ref is not None and cells.get(m, {}).get("low", -1) > ref]
        chance = math.log(len(task.labels)) if task.labels else None
        fits = chance is None or r["epoch_losses"][-1] < 0.9 * chance
        verdict = ("yes: the witness learns it" if r["learnable"] else
                   f"yes: {' and '.join(above)} learn{'s' if len(above) == 1 else ''} it" if above
                   else "no: at chance by construction (the witness fits its training rows)" if fits
                   else "unknown: the witness does not fit its training rows, and no model is above chance")
        models = " / ".join(pct(finetune.get(m, {}).get(name, {}).get("task_score")) for m in MODELS)
        low = min((cells.get(m, {}).get("low") for m in MODELS if m in cells), default=None)
        rows.append([task.label, f"{pct(r['task_score'])} [{pct(r['interval']['low'])}, {pct(r['interval']['high'])}]",
                     f"{r['epoch_losses'][-1]:.3f}" + (f" (uniform guess {chance:.3f})" if chance else ""),
                     pct(r.get("floor")), pct(r.get("majority")), f"{models} [{pct(low)}]", verdict])
    return header, rows


def _setting(setting: dict) -> str:
    return ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(setting.items()))


def agora_rows(finetune: Dict[str, Dict[str, dict]]):
    """Every Agora round of every seed's run: the points proposed and kept, their labels, each θ's
    score on the acceptance half, the θ kept by the pruning, and whether the round was accepted."""
    header = ["task", "seed", "round", "misses (source half)", "valid points", "uncertain (dropped)",
              "unfilled by the similarity bound", "labels of valid points", "labeler agreement on misses",
              "θ: acceptance score", "θ kept", "acceptance before", "acceptance after", "verdict"]
    rows = []
    for task in T.TASKS.values():
        result = finetune.get("bort-agora", {}).get(task.name)
        for run in (result or {}).get("runs", []):
            for r in run.get("agora_rounds", []):
                agreement, theta = r.get("labeler_agreement"), r.get("theta", [])
                accepted = r.get("accepted")         # None: a record made before rounds were judged
                rows.append([task.label, run["seed"], r["round"], r["misses"], r.get("points_valid", ""),
                             r.get("points_uncertain", ""), r.get("neighbours_beyond_bound", ""),
                             " ".join(f"{k}:{v}" for k, v in r.get("point_labels", {}).items()),
                             "" if agreement is None else f"{100 * agreement:.1f}",
                             " ".join(f"{t['setting']}: {pct(t['accept_score'])}" for t in theta),
                             " ".join(r.get("theta_kept", [])), pct(r.get("accept_before")), pct(r.get("accept_after")),
                             "" if accepted is None else "accepted" if accepted else "rejected"])
    return header, rows


def agora_losses(significance: dict, finetune: Dict[str, Dict[str, dict]]) -> list:
    """A line per task where Bort + Agora is significantly below Bort, with its measured cause: per
    seed, the rounds accepted on the acceptance half, what they gained there, and what the run then
    scored on the held-out rows against Bort's run of the same seed."""
    lines = []
    for name, record in significance.get("tasks", {}).items():
        test = record.get("agora_vs_bort", {})
        if not test.get("significant") or test.get("difference", 0) >= 0 or name not in T.TASKS:
            continue
        bort = {r["seed"]: r["task_score"] for r in finetune.get("bort", {}).get(name, {}).get("runs", [])}
        seeds = []
        for run in finetune.get("bort-agora", {}).get(name, {}).get("runs", []):
            kept = [r for r in run.get("agora_rounds", []) if r.get("accepted")]
            gain = sum(r["accept_after"] - r["accept_before"] for r in kept)
            seeds.append(f"seed {run['seed']}: {len(kept)} round(s) accepted, {100 * gain:+.1f} on the acceptance "
                         f"half, held-out {pct(bort.get(run['seed']))} -> {pct(run['task_score'])}")
        lines.append(f"{T.TASKS[name].label}: Bort + Agora is below Bort ({100 * test['difference']:+.1f}, p = "
                     f"{test['p_value']}); " + "; ".join(seeds) + ". A round accepted on the acceptance half that "
                     "loses on the held-out rows was chosen by the noise of a small split, not by what it taught.")
    return lines
