"""Stage `prepare`: task data in the official layouts, the text corpus, and the TF-IDF floor.

Embedded default (`data.source: null`): generate all 23 tasks (bort.embedded) and take the corpus
from installed packages (bort.corpus). With `data.source` naming a folder laid out as the official
downloads (glue_data/, combined/, RACE/), copy in the files of the tasks in params.yaml `tasks`
and of the diagnostic sets their models score (AX and MNLI-mm follow MNLI-m; AX-b and AX-g follow
SuperGLUE-RTE): only those must exist, each missing one is an error naming it. Every copied split
is validated by the same loaders. Either way, fit the TF-IDF + logistic-regression floor per task
and score it on the rows the fine-tuned models are scored on (bort.finetune.heldout).

  python pipeline/prepare.py --tasks data/tasks --corpus data/corpus --metrics metrics/prepare.json
"""
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort import baseline, cli, corpus, embedded, metrics, params, tasks      # noqa: E402
from bort.errors import at, cli_main, setup_logging                           # noqa: E402
from bort.finetune import HELDOUT                                             # noqa: E402
from bort.finetune.heldout import splits                                      # noqa: E402
from bort.io import atomic_dir, write_json                                    # noqa: E402
from bort.params import Section                                               # noqa: E402

log = logging.getLogger("prepare")


@dataclass(frozen=True)
class DataConfig(Section):
    """params.yaml `data`."""
    source: Optional[str]          # null: generate the 23 tasks; or a folder with glue_data/, combined/, RACE/
    corpus_source: Optional[str]   # null: English prose shipped by installed packages; or a folder of .txt
    seed: int
    train_size: int                # generated rows per split (passage tasks: encoded rows)
    dev_size: int
    test_size: int
    noise: float                   # share of generated labels flipped
    heldout_fraction: float        # corpus documents held out for distillation losses


def main(argv=None) -> int:
    args = cli.parser(__doc__, {"tasks": "output: the task folders", "corpus": "output: train.txt and heldout.txt",
                                "metrics": "output: floor scores and counts (JSON)"}).parse_args(argv)
    setup_logging()
    p = DataConfig.load("data")
    heldout = params.value("finetune.heldout", HELDOUT)     # the fine-tuning stages' held-out rows
    selected = tasks.selected()
    needed = selected + tasks.scored_with([t.name for t in selected])
    with atomic_dir(args.tasks) as tmp:
        if p.source is None:
            sizes = {"train": p.train_size, "dev": p.dev_size, "test": p.test_size}
            log.info("generating the 23 embedded tasks %s", sizes)
            embedded.write_all(tmp, sizes, p.seed, p.noise)
        else:
            copy_official(Path(p.source), tmp, needed)
        counts = {t.name: {split: len(tasks.load_split(t, tasks.task_dir(tmp, t), split))
                           for split in tasks.present_splits(t, tasks.task_dir(tmp, t))}
                  for t in needed}
    docs = corpus.embedded_documents() if p.corpus_source is None else corpus.user_documents(p.corpus_source)
    n_held = max(1, int(len(docs) * p.heldout_fraction))
    with atomic_dir(args.corpus) as tmp:
        (tmp / "train.txt").write_text("\n".join(docs[:-n_held]) + "\n", encoding="utf-8")
        (tmp / "heldout.txt").write_text("\n".join(docs[-n_held:]) + "\n", encoding="utf-8")
    log.info("corpus: %d documents (%d held out)", len(docs), n_held)
    floor = baseline.run_floor(needed, lambda t: splits(t, tasks.task_dir(args.tasks, t), heldout), seed=p.seed)
    write_json(args.metrics, {
        "floor_tfidf_logreg": {name: {**m, "task_score": metrics.task_score(tasks.TASKS[name], m)}
                               for name, m in sorted(floor.items())},
        "examples": counts,
        "corpus": {"documents": len(docs), "heldout_documents": n_held,
                   "words": sum(len(d.split()) for d in docs),
                   "source": "pydoc_data.topics + sklearn/datasets/descr" if p.corpus_source is None
                   else "user"},
        "data_source": "embedded" if p.source is None else "official",
    })
    for name, m in sorted(floor.items()):
        log.info("floor %-14s %s", name, ", ".join(f"{k}={v:.3f}" for k, v in m.items()))
    return 0


def copy_official(source: Path, out: Path, needed) -> None:
    """Copy every split file (RACE: folder) of the `needed` tasks from the official layout below
    `source` to the same place below `out`; a missing one is an error naming it and why it is needed."""
    if not source.is_dir():
        raise at(source, None, "missing; expected params.yaml data.source to name a folder with the official "
                               "glue_data/, combined/ or RACE/ downloads")
    for task in needed:
        why = f"{task.name} is in params.yaml tasks" if task.trains else \
            f"{task.name} is scored by {task.scored_by}'s model, which params.yaml tasks selects"
        for split in task.splits:
            path = tasks.split_path(task, tasks.task_dir(source, task), split)
            if not path.exists():
                names = " or ".join(task.files(split))
                raise at(path, None, f"missing; {why}, so its official {split} split ({names}) must exist "
                                     f"under {tasks.SUITES[task.suite].folder}/")
            target = out / path.relative_to(source)
            if target.exists():                                   # MNLI-m and MNLI-mm share train.tsv
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, target)
    log.info("copied %d task(s) from %s: %s", len(needed), source, ", ".join(t.name for t in needed))


if __name__ == "__main__":
    sys.exit(cli_main(main))
