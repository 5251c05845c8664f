"""Stage `diagnostics`: the sets without a training run of their own -- MNLI-mm and AX (by the
MNLI-m models), AX-b and AX-g (by the SuperGLUE RTE models) -- scored with each compared model.

  python pipeline/diagnostics.py --data data/tasks --teacher models/teacher --student models/student \
      --models models/finetune --metrics metrics/finetune

Each parent model is loaded once; its predictions are mapped onto the scored set's labels.
"""
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort import cli, tasks                                                   # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.finetune import MODELS, FinetuneSection, Layout, evaluate           # noqa: E402
from bort.finetune.heldout import splits                                      # noqa: E402
from bort.finetune.model import load_trained                                  # noqa: E402


def main(argv=None) -> int:
    parser = cli.parser(__doc__, Layout.PATHS)
    parser.add_argument("--model", nargs="+", choices=MODELS, default=list(MODELS))
    args = parser.parse_args(argv)
    setup_logging()
    section = FinetuneSection.load("finetune")
    selected = tasks.selected()
    scored = sorted(tasks.scored_with([t.name for t in selected]), key=lambda t: t.name)
    layout = Layout.from_args(args)
    for which in [m for m in MODELS if m in args.model]:
        cfg = section.model(which)
        for parent in sorted({t.scored_by for t in scored}):
            parent = tasks.get_task(parent)
            model = load_trained(parent, layout.encoder(which), layout.model(which, parent), cfg)
            for task in (t for t in scored if t.scored_by == parent.name):
                data = splits(task, tasks.task_dir(args.data, task), section.heldout)
                result = {"task": task.name, "model": which, "heldout": data.note, "config": asdict(cfg),
                          "scored_by": parent.name}
                evaluate.write(task, which, model, data, result, layout, trained=False)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
