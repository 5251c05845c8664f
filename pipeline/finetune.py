"""Stage `finetune@T` (one DVC job per trained task): BERT, then Bort, on one task; held-out
scores and leaderboard submissions. Agora continues from both in its own stage (`agora@T`).

  python pipeline/finetune.py RTE --data data/tasks --teacher models/teacher --student models/student \
      --models models/finetune --metrics metrics/finetune --checkpoints models/finetune_ckpt [--model bort]

The two models share one process because a process costs about 2.7 s before any work (DVC, then
importing MXNet, GluonNLP and scikit-learn) and both read the same splits. Honest evaluation
(bort.finetune.heldout): every reported score is measured on data Agora never reads.
"""
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm                                                          # noqa: E402

from bort import checkpoint, cli, device, tasks                              # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.finetune import MODELS, FinetuneSection, Layout, evaluate           # noqa: E402
from bort.finetune.heldout import splits                                      # noqa: E402
from bort.finetune.model import new_model                                     # noqa: E402

log = logging.getLogger("finetune")
TRAINED_HERE = MODELS[:2]                 # BERT and Bort; Bort + Agora: pipeline/agora.py


def main(argv=None) -> int:
    parser = cli.parser(__doc__, dict(Layout.PATHS, **Layout.CHECKPOINTS))
    parser.add_argument("task", help="a task with training data, e.g. RTE")
    parser.add_argument("--model", nargs="+", choices=TRAINED_HERE, default=list(TRAINED_HERE))
    args = parser.parse_args(argv)
    setup_logging()
    section = FinetuneSection.load("finetune")
    task = tasks.trained([args.task], where="argument task")[0]
    data = splits(task, tasks.task_dir(args.data, task), section.heldout)
    layout = Layout.from_args(args)
    ctx = device.contexts()                                   # params.yaml `device` (bort.device)
    device.mixed_precision(ctx)
    chosen = [m for m in TRAINED_HERE if m in args.model]
    for which in chosen:
        fine_tune(task, which, section.model(which, len(data.train)), data, layout, ctx)
    for which in chosen:          # both models are written: resume no more (a kill during Bort
        checkpoint.clear(layout.checkpoint(which, task))      # keeps BERT's finished checkpoint)
    return 0


def fine_tune(task, which, cfg, data, layout, ctx=None):
    """Fine-tune model `which` on `task`, score it, write its model, metrics and submission."""
    started = time.perf_counter()
    train, result = evaluate.start(task, which, cfg, data)
    model = new_model(task, layout.encoder(which), cfg, ctx)
    with tqdm(desc=f"finetune {which} {task.name}", file=sys.stderr, unit="batch") as bar:
        result["epoch_losses"] = model.fit(train, bar, checkpoint_dir=layout.checkpoint(which, task))
    evaluate.write(task, which, model, data, result, layout)
    log.info("%s %s: %s (%.1f s)", which, task.name, result["scores"], time.perf_counter() - started)


if __name__ == "__main__":
    sys.exit(cli_main(main))
