"""Prove that the same inputs give the same outputs: re-run stages and compare bytes.

    python pipeline/check_determinism.py                   # dvc repro --force, the whole graph
    python pipeline/check_determinism.py prepare extract   # only these stages (--force, --single-item)

Hashes every file under metrics/ and reports/ except the measured times (metrics/timing.json,
metrics/pretrain_speed.json, reports/timing.md, reports/timing.png), runs the stages again with
`--force`, hashes again and lists every file that changed. Exit 0 when nothing did, 1 otherwise.
"""
import hashlib
import subprocess
import sys
from pathlib import Path

TIMED = {"metrics/timing.json", "metrics/pretrain_speed.json", "reports/timing.md", "reports/timing.png"}


def digests():
    out = {}
    for folder in ("metrics", "reports"):
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and str(path) not in TIMED:
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def main(argv=None) -> int:
    stages = list(sys.argv[1:] if argv is None else argv)
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


if __name__ == "__main__":
    sys.exit(main())
