"""The learnability witness: can the source model learn a task at all, given a generous budget?

The default fine-tuning is a budget (bort.finetune: BERT trains its top cells for a few epochs),
so a task the source does not learn there may be unlearnable from its training rows, or merely
under-trained. This witness settles which: the source model fully fine-tuned -- every cell, and
its embeddings, trainable (`frozen_layers: 0`, `freeze_embeddings: false`) -- for many epochs, one
seed, scored on the same held-out split as the tables, beside the TF-IDF floor (metrics/prepare.json)
and the majority class. A task whose witness is at the floor or at chance cannot be learned from
its rows by this source; one above it can, and a default cell at chance then measures the budget.

Not part of `dvc repro` (it costs minutes per task on a CPU); run it after the prepare and
teacher stages:

  python -m bort.witness --tasks WiC WSC --epochs 10 --lr 0.0001 --out metrics/witness.json

Each task is one run in a one-thread worker process (bort.workers), so two tasks train at once on
two cores and the scores do not depend on `--workers`.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, Sequence

from bort.errors import cli_main, setup_logging

log = logging.getLogger("witness")


def majority(task, heldout: Sequence[dict]):
    """The best task score a one-class model gets on `heldout`: every instance given the held-out
    split's most frequent label (None where answers are not a label set: regression, multiple
    choice, ReCoRD)."""
    from bort import metrics as M
    if task.labels is None:
        return None
    counts = Counter(i["label"] for i in heldout)
    top = max(sorted(counts), key=lambda k: counts[k])
    return M.task_score(task, M.score(task, heldout, [top] * len(heldout)))


def witness(task_name: str, data_dir: str, teacher_dir: str, settings: Dict[str, object], seed: int) -> dict:
    """One fully fine-tuned run of the source on `task_name`: its held-out score with the
    significance stage's bootstrap interval (bort.significance), and its Agora-dev score."""
    from bort import metrics as M, significance as S, tasks
    from bort.finetune import FinetuneSection, evaluate
    from bort.finetune.heldout import splits
    from bort.finetune.model import new_model
    setup_logging()
    started = time.perf_counter()
    section = FinetuneSection.load("finetune")
    task = tasks.get_task(task_name)
    data = splits(task, tasks.task_dir(data_dir, task), section.heldout)
    cfg = section.model("bert", len(data.train), tuple(sorted(settings.items())))
    model = new_model(task, teacher_dir, cfg, None, seed)
    losses = model.fit(evaluate.training_set(cfg, data))
    out = {"task": task.name, "seed": seed, "epoch_losses": losses, "heldout_examples": len(data.heldout),
           "measured_on": data.note}
    if task.decision_threshold:
        out["decision"] = model.fit_threshold(data.agora_dev)
    out["agora_dev_task_score"] = M.task_score(task, M.score(task, data.agora_dev, model.predict(data.agora_dev)))
    preds = model.predict(data.heldout)
    out["interval"] = S.interval([S.Scored(task, data.heldout, [preds])], S.SignificanceConfig.load("significance"))
    out["task_score"] = M.task_score(task, M.score(task, data.heldout, preds))
    out["majority"] = majority(task, data.heldout)
    log.info("%s: witness %.3f [%.3f, %.3f] (%.0f s)", task.name, out["task_score"], out["interval"]["low"],
             out["interval"]["high"], time.perf_counter() - started)          # the time is logged, not kept
    return out


def learnable(record: dict) -> bool:
    """The witness's verdict: its held-out interval lies above the TF-IDF floor and the majority
    class (where the task has them)."""
    refs = [v for v in (record.get("floor"), record.get("majority")) if v is not None]
    return not refs or record["interval"]["low"] > max(refs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", help="tasks with training data (default: params.yaml `tasks`)")
    parser.add_argument("--data", default="data/tasks", help="the task folders (prepare stage)")
    parser.add_argument("--teacher", default="models/teacher", help="the source model folder (teacher stage)")
    parser.add_argument("--floor", default="metrics/prepare.json", help="the prepare stage's metrics (the floor)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="one-thread processes (tasks in parallel)")
    parser.add_argument("--out", help="merge the results into this JSON file (the report reads metrics/witness.json)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = parser.parse_args(argv)
    setup_logging()
    from tqdm import tqdm
    from bort import tasks, workers
    from bort.io import write_json
    chosen = [t.name for t in (tasks.trained(args.tasks, where="--tasks") if args.tasks else tasks.selected())
              if t.trains]
    settings = {"epochs": args.epochs, "lr": args.lr, "frozen_layers": 0, "freeze_embeddings": False}
    floors = json.loads(Path(args.floor).read_text(encoding="utf-8"))["floor_tfidf_logreg"]
    report = {"settings": settings, "seed": args.seed, "tasks": {}}
    if args.out and Path(args.out).exists():             # earlier tasks of the same settings are kept
        earlier = json.loads(Path(args.out).read_text(encoding="utf-8"))
        if (earlier.get("settings"), earlier.get("seed")) == (settings, args.seed):
            report["tasks"] = earlier["tasks"]
    with workers.pool(args.workers) as pool, tqdm(total=len(chosen), desc="witness", unit="task",
                                                  file=sys.stderr) as bar:
        futures = [pool.submit(witness, name, args.data, args.teacher, settings, args.seed) for name in chosen]
        for future in futures:
            result = future.result()
            result["floor"] = floors.get(result["task"], {}).get("task_score")
            result["learnable"] = learnable(result)
            report["tasks"][result["task"]] = result
            if args.out:
                write_json(args.out, report)
            bar.update(1)
    if args.json:
        print(json.dumps(report, indent=1, sort_keys=True))
    else:
        print("| task | witness (held-out) [95% interval] | Agora dev | TF-IDF floor | majority | last loss | learnable |\n"
              "|---|---|---|---|---|---|---|")
        for name in chosen:
            r = report["tasks"][name]
            cells = [r["agora_dev_task_score"], r["floor"], r["majority"]]
            print(f"| {name} | {100 * r['task_score']:.1f} [{100 * r['interval']['low']:.1f}, "
                  f"{100 * r['interval']['high']:.1f}] | " + " | ".join("–" if v is None else f"{100 * v:.1f}" for v in cells)
                  + f" | {r['epoch_losses'][-1]:.3f} | {'yes' if r['learnable'] else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
