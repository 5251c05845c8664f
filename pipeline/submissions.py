"""Stage `submissions`: one leaderboard zip per suite (GLUE, SuperGLUE) and compared model, from the
run of the first seed of params.yaml `finetune.seeds` (bort.leaderboard).

  python pipeline/submissions.py --data data/tasks --models models/finetune --diagnostics models/diagnostics \\
      --out reports/submissions

Writes <out>/glue-<model>.zip and <out>/superglue-<model>.zip for bert, bort and bort-agora, each with
every file its leaderboard takes at the top level, and <out>/manifest.json (which run each file comes
from). Every file is checked against the official format and the test set it answers first. A suite
whose trained tasks are not all in params.yaml `tasks` gets no zip and one log line naming the
missing ones; RACE has no leaderboard and no zip. Reads params.yaml `tasks` and `finetune.seeds`.
"""
import sys
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort import cli, leaderboard, params, tasks                              # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.finetune import MODELS                                              # noqa: E402
from bort.io import atomic_dir                                                # noqa: E402

PATHS = {"data": "the task folders (prepare stage): each test set the files answer",
         "models": "fine-tuned runs: <models>/<model>/<task>/seed-<s>/submission/",
         "diagnostics": "runs on the sets scored by a parent: <diagnostics>/<model>/<set>/seed-<s>/submission/",
         "out": "output: <suite>-<model>.zip and manifest.json"}


def main(argv=None) -> int:
    args = cli.parser(__doc__, PATHS).parse_args(argv)
    setup_logging()
    selected = [t.name for t in tasks.selected()]
    seeds = params.value("finetune.seeds", List[int])
    with atomic_dir(args.out) as out:
        leaderboard.build(args.data, args.models, args.diagnostics, out, selected, seeds, MODELS)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
