"""Stage `agora@T` (one DVC job per trained task): Bort + Agora, continuing the task's fine-tuned
Bort model with points sampled near its mistakes and labelled by the task's fine-tuned BERT.

  python pipeline/agora.py RTE --data data/tasks --teacher models/teacher --student models/student \
      --pool models/agora_pool --models models/finetune --metrics metrics/finetune \
      --checkpoints models/finetune_ckpt

Its own stage so that a change to an Agora setting re-runs Agora alone, not BERT and Bort on
every task. Agora reads Agora's split of dev only; a point equal to a held-out input is dropped
(bort.agora, bort.finetune.heldout). Runs on params.yaml `device` (bort.device); a killed run
resumes after its last completed round (<checkpoints>/bort-agora/<task>/).
"""
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm                                                          # noqa: E402

from bort import agora, checkpoint, cli, device, metrics as M, tasks, teacher  # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.finetune import MODELS, FinetuneSection, Layout, evaluate           # noqa: E402
from bort.finetune.heldout import splits                                      # noqa: E402
from bort.finetune.model import PARAMS, load_trained                          # noqa: E402

log = logging.getLogger("agora")
WHICH = MODELS[2]                         # Bort + Agora


def main(argv=None) -> int:
    parser = cli.parser(__doc__, dict(Layout.PATHS, **Layout.CHECKPOINTS,
                                      pool="Agora's embedded pool (agora-pool stage)"))
    parser.add_argument("task", help="a task with training data, e.g. RTE")
    args = parser.parse_args(argv)
    setup_logging()
    section = FinetuneSection.load("finetune")
    task = tasks.trained([args.task], where="argument task")[0]
    layout = Layout.from_args(args)
    started = time.perf_counter()
    data = splits(task, tasks.task_dir(args.data, task), section.heldout)
    cfg = section.model(WHICH, len(data.train))
    train, result = evaluate.start(task, WHICH, cfg, data)
    ctx = device.contexts()
    device.mixed_precision(ctx)
    labeler = load_trained(task, layout.encoder("bert"), layout.model("bert", task),
                           section.model("bert", len(data.train)), ctx[:1])      # predicts only
    student = load_trained(task, layout.encoder("bort"), layout.model("bort", task), cfg, ctx)   # Agora's step 1
    encoder, vocab, _ = teacher.load_model(layout.encoder("bert"))
    device.place(encoder, ctx[:1])

    def embed(texts):
        return teacher.sentence_embeddings(encoder, vocab, texts)

    def score(instances, preds):
        return M.task_score(task, M.score(task, instances, preds))
    forbidden = {task.shape.inputs(i) for i in data.heldout}
    sources = {"labeler": checkpoint.sha256(layout.model("bert", task) / PARAMS),
               "embedder": checkpoint.sha256(layout.encoder("bert") / "model.params"),
               "pool": {p.name: checkpoint.sha256(p) for p in sorted(Path(args.pool).iterdir()) if p.is_file()}}
    with tqdm(desc=f"agora {task.name}", file=sys.stderr, unit="batch") as bar:
        model, rounds = agora.run(task, student, train, data.agora_dev, labeler, agora.Pool.load(args.pool),
                                  embed, section.agora, forbidden, score, bar, layout.checkpoint(WHICH, task),
                                  sources)
    result["agora"] = {"config": asdict(section.agora), "rounds": rounds}
    evaluate.write(task, WHICH, model, data, result, layout)
    checkpoint.clear(layout.checkpoint(WHICH, task))          # the model is written: resume no more
    log.info("%s %s: %s (%.1f s)", WHICH, task.name, result["scores"], time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
