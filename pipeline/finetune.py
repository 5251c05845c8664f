"""Stage `finetune@T` (one DVC job per trained task): BERT, Bort and Bort + Agora on one task, once
per seed of params.yaml `finetune.seeds`, each model's settings first chosen on Agora's dev split
from the preset's search grid (bort.finetune.runs); held-out scores and predictions, leaderboard
submissions.

  python pipeline/finetune.py RTE --data data/tasks --teacher models/teacher --student models/student \
      --pool models/agora_pool --models models/finetune --metrics metrics/finetune \
      --checkpoints models/finetune_ckpt [--model bort bort-agora]

The runs (model x seed) are spread over `finetune.workers` one-thread processes
(bort.finetune.runs), or a Dask cluster's workers when it names one (bort.cluster): the Bort +
Agora run with seed s starts when BERT's and Bort's runs s have finished. All three models are
one stage, so one process per task starts MXNet (about 2.7 s before any work) and the workers
keep each model's frozen states for all its seeds. Honest
evaluation (bort.finetune.heldout): every reported score is measured on data Agora never reads.
A killed stage resumes each run from its last checkpoint (<checkpoints>/<model>/<task>/seed-<s>/).
"""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm                                                          # noqa: E402

from bort import checkpoint, cli, device, tasks, workers                     # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.finetune import MODELS, FinetuneSection, Layout, runs              # noqa: E402
from bort.finetune.heldout import splits                                      # noqa: E402
from bort.io import write_json                                                # noqa: E402

log = logging.getLogger("finetune")


def main(argv=None) -> int:
    parser = cli.parser(__doc__, dict(Layout.PATHS, **Layout.CHECKPOINTS,
                                      pool="Agora's embedded pool (agora-pool stage)"))
    parser.add_argument("task", help="a task with training data, e.g. RTE")
    parser.add_argument("--model", nargs="+", choices=MODELS, default=list(MODELS),
                        help="the models to train (Bort + Agora alone reads BERT's and Bort's runs from --models)")
    args = parser.parse_args(argv)
    setup_logging()
    section = FinetuneSection.load("finetune")
    task = tasks.trained([args.task], where="argument task")[0]
    data = splits(task, tasks.task_dir(args.data, task), section.heldout)
    layout = Layout.from_args(args)
    paths = {k: str(getattr(args, k)) for k in Layout.FIELDS + ("data", "pool")}
    chosen = [m for m in MODELS if m in args.model]
    in_process = not workers.is_cluster(section.workers) and device.wants_gpu()   # local GPUs: one run at a time
    grids = {m: section.grid(m) for m in chosen}
    with tqdm(total=runs.Plan(chosen, section.seeds, grids).total(), desc=f"finetune {task.name}", unit="run",
              file=sys.stderr) as bar:
        records, searches = runs.run_all(task.name, paths, chosen, section.seeds, section.workers, in_process,
                                         grids, lambda run, record: bar.update(1))
    for which, summary in runs.summaries(task, section, data, records, searches).items():
        write_json(layout.metrics_file(which, task), summary)
    for which in chosen:          # every run is written: resume no more (a kill keeps the finished
        checkpoint.clear(layout.checkpoint(which, task))      # runs' checkpoints)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
