"""Stage `diagnostics`: the sets without a training run of their own -- MNLI-mm and AX (by the
MNLI-m models), AX-b and AX-g (by the SuperGLUE RTE models) -- scored with each compared model,
for the parents that params.yaml `tasks` selects (none selected: an empty record).

  python pipeline/diagnostics.py --data data/tasks --teacher models/teacher --student models/student \\
      --models models/finetune --out models/diagnostics --metrics metrics/diagnostics.json

Each parent model's run (one per seed of params.yaml `finetune.seeds`) is loaded once; its
predictions are mapped onto the scored set's labels, and each set's record gathers the runs. An
unlabelled set (GLUE's public diagnostic.tsv / AX.tsv) gets its leaderboard submission and no score.
The stage reads the whole models/ folder of the fine-tuning stages, so that any subset of tasks
is one fixed stage; it writes its own folder and one metrics file.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort import cli, device, tasks                                           # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.finetune import MODELS, FinetuneSection, Layout, evaluate, seed_dir  # noqa: E402
from bort.finetune.heldout import splits                                      # noqa: E402
from bort.finetune.frozen import SharedStates                                # noqa: E402
from bort.finetune.model import load_trained, trained_config                  # noqa: E402
from bort.io import atomic_dir, write_json                                    # noqa: E402

PATHS = {"data": "the task folders (prepare stage)", "teacher": "the source model folder (BERT)",
         "student": "the distilled student folder (Bort)",
         "models": "the fine-tuned models: <models>/<model>/<task>/ (finetune and agora stages)",
         "out": "output: <out>/<model>/<set>/submission, and sets.json (what was scored)",
         "metrics": "output: every model's record on every scored set (JSON: model -> set -> record)"}


def main(argv=None) -> int:
    parser = cli.parser(__doc__, PATHS)
    parser.add_argument("--model", nargs="+", choices=MODELS, default=list(MODELS))
    args = parser.parse_args(argv)
    setup_logging()
    section = FinetuneSection.load("finetune")
    selected = tasks.selected()
    scored = sorted(tasks.scored_with([t.name for t in selected]), key=lambda t: t.name)
    parents = Layout(args.teacher, args.student, args.models)
    ctx = device.contexts()[:1]                               # inference: the first context
    records = {}
    parent_tasks = [tasks.get_task(name) for name in sorted({t.scored_by for t in scored})]
    data = {t.name: splits(t, tasks.task_dir(args.data, t), section.heldout) for t in scored}   # read once
    with atomic_dir(args.out) as out:
        for which in [m for m in MODELS if m in args.model]:
            for parent in parent_tasks:
                cfg = trained_config(parents.model(which, parent, section.seeds[0]))   # what the parent trained with
                runs = {t.name: [] for t in scored if t.scored_by == parent.name}
                frozen_cache = SharedStates()
                for seed in section.seeds:
                    model = load_trained(parent, parents.encoder(which), parents.model(which, parent, seed), ctx, seed,
                                         frozen_cache)
                    for name in runs:
                        task = tasks.get_task(name)
                        runs[name].append(evaluate.finish(task, model, data[name].heldout, data[name].test,
                                                          {"seed": seed}, out / which / name / seed_dir(seed)))
                for name, task_runs in runs.items():
                    records.setdefault(which, {})[name] = evaluate.summary(
                        tasks.get_task(name), which, cfg, data[name], task_runs,
                        scored_by=parent.name)
        write_json(out / "sets.json", {which: sorted(sets) for which, sets in records.items()})
    write_json(args.metrics, records)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
