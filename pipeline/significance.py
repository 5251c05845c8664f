"""Stage `significance`: a confidence interval for every cell and suite score of the report, and a
paired test per task and per suite for BERT vs Bort and for Bort + Agora vs Bort (bort.significance).

  python pipeline/significance.py --data data/tasks --models models/finetune --diagnostics models/diagnostics \
      --metrics metrics/significance.json --predictions metrics/predictions.json

Reads each run's held-out predictions (<models>/<model>/<task>/seed-<s>/heldout.json; a set scored
by its parent's models: <diagnostics>/<model>/<set>/seed-<s>/) and the held-out gold from the task
folders, for params.yaml `tasks` and the sets their models score. Intervals: bootstrap over held-out
units, the seeds pooled, percentile method; tests: approximate randomisation on the same units,
two-sided; params.yaml `significance` sets the resamples, the levels and the generator's seed.

It also writes every held-out prediction it read, with a digest of the held-out rows and their gold,
to one compact file (--predictions; git carries it, `cache: false`), so that `python -m bort.compare`
can compare any two commits or experiments without their DVC outputs (bort.compare says why).
"""
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm                                                          # noqa: E402

from bort import cli, significance as S, tasks                                # noqa: E402
from bort import predictions as P                                             # noqa: E402
from bort.errors import BortError, cli_main, setup_logging                    # noqa: E402
from bort.finetune import MODELS, FinetuneSection, seed_dir                   # noqa: E402
from bort.finetune.evaluate import PREDICTIONS                                # noqa: E402
from bort.finetune.heldout import splits                                      # noqa: E402
from bort.io import write_json                                                # noqa: E402

log = logging.getLogger("significance")


def predictions(folder: Path, seeds) -> list:
    """Every seed's held-out predictions of one model on one task, in held-out order."""
    out = []
    for seed in seeds:
        path = folder / seed_dir(seed) / PREDICTIONS
        if not path.exists():
            raise BortError(f"{path}: missing; expected the held-out predictions of seed {seed} (run `dvc repro`)")
        out.append(json.loads(path.read_text())["predictions"])
    return out


def main(argv=None) -> int:
    args = cli.parser(__doc__, {"data": "the task folders (prepare stage)",
                                "models": "fine-tuned runs: <models>/<model>/<task>/seed-<s>/",
                                "diagnostics": "runs on the sets scored by a parent: <diagnostics>/<model>/<set>/seed-<s>/",
                                "metrics": "output: intervals and tests (JSON)",
                                "predictions": "output: every held-out prediction read, for bort.compare (JSON)",
                                }).parse_args(argv)
    setup_logging()
    cfg = S.SignificanceConfig.load("significance")
    section = FinetuneSection.load("finetune")
    names = [t.name for t in tasks.selected()]
    shown = [t for t in tasks.TASKS.values() if t.name in names or t.scored_by in names]
    records = {}                                        # set -> its held-out rows and predictions (bort.predictions)
    scored, out = {}, {"config": {**asdict(cfg), "seeds": list(section.seeds), "interval": "bootstrap percentile",
                                  "test": "approximate randomisation (paired, two-sided)"}, "tasks": {}, "suites": {}}
    for task in tqdm(shown, desc="significance", unit="task", file=sys.stderr):
        held = splits(task, tasks.task_dir(args.data, task), section.heldout).heldout
        if not held:                                    # an unlabelled diagnostic set: nothing to score
            continue
        root = Path(args.models if task.trains else args.diagnostics)
        runs = {m: predictions(root / m / task.name, section.seeds) for m in MODELS}     # read once
        records[task.name] = P.heldout_record(task, held, runs, section.seeds)
        scored[task.name] = {m: S.Scored(task, held, runs[m]) for m in MODELS}
        record = {m: S.interval([scored[task.name][m]], cfg) for m in MODELS}
        for m in MODELS:                                # a class index or an option: one class throughout?
            if all(isinstance(v, int) for p in runs[m] for v in p):
                record[m]["one_class"] = all(len(set(p)) == 1 for p in runs[m])
        record["units"] = scored[task.name]["bert"].n_units
        for key, a, b in S.COMPARISONS:
            record[key] = S.paired_test([scored[task.name][a]], [scored[task.name][b]], cfg)
        out["tasks"][task.name] = record
    for suite in tasks.SUITES:              # a suite counts the scored sets too (MNLI-mm), as the report does
        members = [t.name for t in tasks.suite_tasks(suite, [s.name for s in shown])
                   if not t.is_diagnostic and t.name in scored]
        if not members:
            continue
        record = {"tasks": members,
                  **{m: S.interval([scored[t][m] for t in members], cfg) for m in MODELS}}
        for key, a, b in S.COMPARISONS:
            record[key] = S.paired_test([scored[t][a] for t in members], [scored[t][b] for t in members], cfg)
        out["suites"][suite] = record
    write_json(args.metrics, out)
    P.write_predictions(args.predictions, section.seeds, records)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
