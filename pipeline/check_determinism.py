"""Prove that the same inputs give the same outputs, or compare the conclusions of two runs.

    python pipeline/check_determinism.py                   # dvc repro --force, the whole graph
    python pipeline/check_determinism.py prepare extract   # only these stages (--force, --single-item)
    python pipeline/check_determinism.py --compare ../other-clone   # conclusions: this run vs another

Same machine (the promise: byte-identical): hashes every file under metrics/ and reports/ except
the measured times (metrics/timing.json, metrics/pretrain_speed.json, reports/timing.md,
reports/timing.png, and reports/report.html, which shows them), runs the stages again with
`--force`, hashes again and lists every file that changed. Exit 0 when nothing did, 1 otherwise.

Another CPU family (the promise: the same conclusions; oneDNN, OpenBLAS and ONNX Runtime pick
kernels and blockings per CPU, so the last bits of trained weights differ, README "Determinism"):
`--compare DIR` reads DIR/metrics/significance.json (a clone run elsewhere) beside ours and checks
every significance mark of the report (task x comparison) and every suite score at its printed
precision (0.1 points); cells that moved are listed for information. Exit 0 when the conclusions
are the same, 1 otherwise.
"""
import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort.finetune import MODELS                                              # noqa: E402
from bort.significance import COMPARISONS                                     # noqa: E402

TIMED = {"metrics/timing.json", "metrics/pretrain_speed.json", "reports/timing.md", "reports/timing.png",
         "reports/report.html"}
SIGNIFICANCE = Path("metrics/significance.json")


def digests():
    out = {}
    for folder in ("metrics", "reports"):
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and str(path) not in TIMED:
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def rerun(stages) -> int:
    before = digests()
    command = ["dvc", "repro", "--force"] + (["--single-item", *stages] if stages else [])
    print("running:", " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True)
    after = digests()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    for name in changed:
        print(f"differs: {name}")
    print(f"{len(after) - len(changed)} files identical, {len(changed)} differ", file=sys.stderr)
    return 1 if changed else 0


def conclusions(record: dict) -> dict:
    """What the report concludes: each test's verdict and each suite score at 0.1 points."""
    out = {}
    for where in ("tasks", "suites"):
        for name, r in sorted(record.get(where, {}).items()):
            for key, _, _ in COMPARISONS:
                if key in r:
                    out[f"{where}/{name}/{key}"] = ("significant" if r[key]["significant"] else "not significant") + \
                        (", A > B" if r[key]["difference"] > 0 else ", A <= B")
            if where == "suites":
                for m in MODELS:
                    out[f"suites/{name}/{m}"] = f"{100 * r[m]['score']:.1f}"
    return out


def compare(other: Path) -> int:
    paths = [SIGNIFICANCE, other / SIGNIFICANCE]
    for path in paths:
        if not path.exists():
            print(f"{path}: missing; expected the significance stage's output (run `dvc repro`)", file=sys.stderr)
            return 2
    ours, theirs = (json.loads(p.read_text()) for p in paths)
    a, b = conclusions(ours), conclusions(theirs)
    moved = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    for key in moved:
        print(f"differs: {key}: {a.get(key)} here, {b.get(key)} there")
    cells = [(t, m) for t in sorted(ours["tasks"]) for m in MODELS
             if t in theirs["tasks"] and f"{100 * ours['tasks'][t][m]['score']:.1f}" !=
             f"{100 * theirs['tasks'][t][m]['score']:.1f}"]
    for t, m in cells:
        print(f"cell moved (information): {t} {m}: {100 * ours['tasks'][t][m]['score']:.1f} here, "
              f"{100 * theirs['tasks'][t][m]['score']:.1f} there")
    print(f"{len(a) - len(moved)} conclusions the same, {len(moved)} differ; {len(cells)} cells moved at 0.1 points",
          file=sys.stderr)
    return 1 if moved else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stages", nargs="*", help="stages to re-run (default: the whole graph)")
    parser.add_argument("--compare", type=Path, help="another clone's root: compare conclusions instead")
    args = parser.parse_args(argv)
    return compare(args.compare) if args.compare else rerun(args.stages)


if __name__ == "__main__":
    sys.exit(main())
