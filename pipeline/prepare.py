"""Stage `prepare`: task data in the official layouts, the text corpus, and the TF-IDF floor.

Embedded default (`data.source: null`): generate all 23 tasks (bort.embedded) and take the corpus
from installed packages (bort.corpus). With `data.source` naming a folder that holds the official
glue_data/, combined/ and RACE/ trees, validate every task with the same loaders and copy them
in. Either way, fit the TF-IDF + logistic-regression floor per task and write its test scores.

  python pipeline/prepare.py --tasks data/tasks --corpus data/corpus --metrics metrics/prepare.json
"""
import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort import baseline, cli, corpus, embedded, metrics, tasks              # noqa: E402
from bort.errors import at, cli_main, setup_logging                           # noqa: E402
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
    with atomic_dir(args.tasks) as tmp:
        if p.source is None:
            sizes = {"train": p.train_size, "dev": p.dev_size, "test": p.test_size}
            log.info("generating the 23 embedded tasks %s", sizes)
            embedded.write_all(tmp, sizes, p.seed, p.noise)
        else:
            source = Path(p.source)
            for folder in sorted(s.folder for s in tasks.SUITES.values()):
                if not (source / folder).is_dir():
                    raise at(source / folder, None, f"missing; expected the official {folder}/ folder "
                                                    "under params.yaml data.source")
                shutil.copytree(source / folder, tmp / folder)
        counts = {name: {split: len(tasks.load_split(t, tasks.task_dir(tmp, t), split))
                         for split in tasks.present_splits(t, tasks.task_dir(tmp, t))}
                  for name, t in tasks.TASKS.items()}
    docs = corpus.embedded_documents() if p.corpus_source is None else corpus.user_documents(p.corpus_source)
    n_held = max(1, int(len(docs) * p.heldout_fraction))
    with atomic_dir(args.corpus) as tmp:
        (tmp / "train.txt").write_text("\n".join(docs[:-n_held]) + "\n", encoding="utf-8")
        (tmp / "heldout.txt").write_text("\n".join(docs[-n_held:]) + "\n", encoding="utf-8")
    log.info("corpus: %d documents (%d held out)", len(docs), n_held)
    floor = baseline.run_floor(list(tasks.TASKS.values()),
                               lambda t, s: tasks.load_split(t, tasks.task_dir(args.tasks, t), s), seed=p.seed)
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


if __name__ == "__main__":
    sys.exit(cli_main(main))
