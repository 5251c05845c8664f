"""Stage `int8`: what int8 inference costs the fine-tuned embedded student in accuracy.

The `time` stage measures how much faster Bort runs with oneDNN int8 dense layers
(bort.quantize); this stage measures what it costs: every fine-tuned Bort task model (params.yaml
`tasks`; the run of the first of `finetune.seeds`) is quantised, calibrated on its own training data (`int8.calibration_examples`
instances), and scored on the same held-out split as in fp32 (deterministic). fp32 runs on the
first context of params.yaml `device` (bort.device); int8 always on the CPU (oneDNN).

  python pipeline/int8.py --data data/tasks --student models/student --models models/finetune/bort \
      --metrics metrics/int8.json
"""
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm                                                          # noqa: E402

from bort import cli, device, metrics as M, tasks                             # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.finetune import FinetuneSection, seed_dir                           # noqa: E402
from bort.finetune.heldout import splits                                      # noqa: E402
from bort.finetune.model import load_trained                                  # noqa: E402
from bort.io import write_json                                                # noqa: E402
from bort.params import Section, positive                                     # noqa: E402

log = logging.getLogger("int8")


@dataclass(frozen=True)
class Int8Config(Section):
    """params.yaml `int8`."""
    calibration_examples: int      # training instances per task (never the held-out split)

    def validate(self) -> None:
        positive(self, "calibration_examples")


def main(argv=None) -> int:
    args = cli.parser(__doc__, {"data": "the task folders", "student": "the distilled student folder",
                                "models": "the fine-tuned Bort models: <models>/<task>/seed-<s>/",
                                "metrics": "output: fp32 vs int8 scores (JSON)"}).parse_args(argv)
    setup_logging()
    p = Int8Config.load("int8")
    finetune = FinetuneSection.load("finetune")
    heldout = finetune.heldout
    selected = tasks.selected()
    ctx = device.contexts()[:1]                    # inference: the first context
    if device.uses_gpu(ctx):
        log.info("fp32 scores on %s; oneDNN int8 is CPU-only: each model is quantised and scored on cpu(0)",
                 device.label(ctx))
    result = {"model": "bort", "seed": finetune.seeds[0], "calibration_examples": p.calibration_examples,
              "tasks": {}}
    for task in tqdm(selected, desc="int8", file=sys.stderr):
        data = splits(task, tasks.task_dir(args.data, task), heldout)
        seed = finetune.seeds[0]                    # the first seed's run (int8 is one model per task)
        model = load_trained(task, args.student, args.models / task.name / seed_dir(seed), ctx, seed)
        fp32 = M.score(task, data.heldout, model.predict(data.heldout))
        model.quantize(data.train[:p.calibration_examples])
        int8 = M.score(task, data.heldout, model.predict(data.heldout))
        result["tasks"][task.name] = {"measured_on": data.note, "fp32": fp32, "int8": int8,
                                      "fp32_task_score": M.task_score(task, fp32),
                                      "int8_task_score": M.task_score(task, int8)}
        log.info("%-14s fp32 %.3f  int8 %.3f", task.name, result["tasks"][task.name]["fp32_task_score"],
                 result["tasks"][task.name]["int8_task_score"])
    scores = result["tasks"].values()
    result["mean_task_score"] = {"fp32": sum(s["fp32_task_score"] for s in scores) / len(scores),
                                 "int8": sum(s["int8_task_score"] for s in scores) / len(scores)}
    write_json(args.metrics, result)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
