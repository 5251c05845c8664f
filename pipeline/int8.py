"""Stage `int8`: what int8 inference costs the fine-tuned embedded student in accuracy.

The `time` stage measures how much faster Bort runs with oneDNN int8 dense layers
(bort.quantize); this stage measures what it costs: every fine-tuned Bort task model is
quantised, calibrated on its own training data (`int8.calibration_examples` instances), and
scored on the same held-out split as in fp32. Writes metrics/int8.json (deterministic).
"""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm                                                          # noqa: E402

from bort import finetune, params, tasks                                      # noqa: E402
from bort import metrics as M                                                  # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.io import write_json                                                # noqa: E402

log = logging.getLogger("int8")


def main(argv=None) -> int:
    setup_logging()
    p = params.section("int8", {"tasks": list, "calibration_examples": int})
    ft = params.section("finetune", finetune.SECTION_SCHEMA)
    cfg = finetune.config(ft, "bort")
    result = {"model": "bort", "calibration_examples": p["calibration_examples"], "tasks": {}}
    for name in tqdm(p["tasks"], desc="int8", file=sys.stderr):
        task = tasks.get_task(name)
        train, _, held, note = finetune.splits(task, tasks.task_dir(ft["data"], task), ft["heldout"])
        model = finetune.load_trained(task, "bort", cfg)
        fp32 = M.score(task, held, model.predict(held))
        model.quantize(train[:p["calibration_examples"]])
        int8 = M.score(task, held, model.predict(held))
        result["tasks"][name] = {"measured_on": note, "fp32": fp32, "int8": int8,
                                 "fp32_task_score": M.task_score(task, fp32), "int8_task_score": M.task_score(task, int8)}
        log.info("%-14s fp32 %.3f  int8 %.3f", name, result["tasks"][name]["fp32_task_score"],
                 result["tasks"][name]["int8_task_score"])
    scores = result["tasks"].values()
    result["mean_task_score"] = {"fp32": sum(s["fp32_task_score"] for s in scores) / len(scores),
                                 "int8": sum(s["int8_task_score"] for s in scores) / len(scores)}
    write_json("metrics/int8.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
