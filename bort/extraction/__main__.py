"""`python -m bort.extraction mlp --eps 0.5 [--json]`: the published extraction on a second network
family, a multilayer perceptron ⟨depth, width⟩ on scikit-learn's digits (bort.extraction.mlp).

Every candidate × every learning rate is trained for the interval s(ε) epochs and on, in the same
runs, to a long reference interval; prints ξ*, the candidates trained and in the grid, W(ξ*) and
the exhaustive optimum's W, both with the errors at the reference interval, and whether
W(ξ*) ≥ W(optimum) / (1 + ε), the FPTAS's promise. Exit 0 when it holds, 1 when not, 2 on bad input.
The BERT family runs as the `extract` stage of dvc.yaml (pipeline/extract.py).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Optional, Sequence

from bort import extraction
from bort.errors import BortError, cli_main


def parse_args(argv):
    first, _, rest = __doc__.partition("\n\n")
    parser = argparse.ArgumentParser(prog="python -m bort.extraction", description=" ".join(first.split()),
                                     epilog=rest.strip(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="family", required=True)
    mlp = sub.add_parser("mlp", help="multilayer perceptron ⟨depth, width⟩ on scikit-learn's digits")
    mlp.add_argument("--eps", type=float, default=0.5, help="approximation parameter ε (default 0.5)")
    mlp.add_argument("--other-eps", type=float, nargs="*", default=[1.0, 0.25],
                     help="further ε whose ξ* is reported (default 1.0 0.25)")
    mlp.add_argument("--epochs-per-unit-eps", type=int, default=10, help="s(ε) = ceil(this / ε) epochs")
    mlp.add_argument("--reference-epochs", type=int, default=150, help="the exhaustive run's interval")
    mlp.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 4])
    mlp.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    mlp.add_argument("--learning-rates", type=float, nargs="+", default=[0.001, 0.01], help="the set Θ")
    mlp.add_argument("--l2", type=float, default=1e-3, help="L2 penalty (scikit-learn's alpha; default 1e-3)")
    mlp.add_argument("--seed", type=int, default=0)
    mlp.add_argument("--json", action="store_true", help="one JSON object on stdout")
    return parser.parse_args(argv)


def run_mlp(args) -> dict:
    from bort.extraction.mlp import MLPFamily
    for name in ("depths", "widths", "learning_rates"):
        bad = [v for v in getattr(args, name) if not v > 0]
        if bad:
            raise BortError(f"--{name.replace('_', '-')}: {bad}; expected positive numbers")
    for name in ("epochs_per_unit_eps", "seed"):
        if getattr(args, name) < (1 if name != "seed" else 0):
            raise BortError(f"--{name.replace('_', '-')}: {getattr(args, name)}; expected "
                            f"{'a positive' if name != 'seed' else 'a non-negative'} integer")
    if args.reference_epochs < 2 * extraction.interval(args.eps, args.epochs_per_unit_eps):
        raise BortError(f"--reference-epochs {args.reference_epochs}: expected at least 2·s(ε) = "
                        f"{2 * extraction.interval(args.eps, args.epochs_per_unit_eps)} epochs")
    started = time.perf_counter()
    if args.l2 < 0:
        raise BortError(f"--l2: {args.l2}; expected a non-negative number")
    family = MLPFamily(args.depths, args.widths, args.learning_rates, l2=args.l2, seed=args.seed)
    result = extraction.extract(family, args.eps, args.epochs_per_unit_eps, args.other_eps,
                                reference_interval=args.reference_epochs)
    out = extraction.summary(result)
    ref = result.reference
    chosen_at_reference = result.w(result.chosen.best, ref.steps)
    out["exhaustive"] = {"interval": ref.steps, "arch": list(ref.best.point), "w": round(ref.w, 6),
                         "chosen_w": round(chosen_at_reference, 6),
                         "within_1_plus_eps": chosen_at_reference * (1 + args.eps) >= ref.w}
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    out = run_mlp(args)
    if args.json:
        print(json.dumps(out, sort_keys=True))
    else:
        ex = out["exhaustive"]
        print(f"mlp ⟨depth, width⟩ on digits, ε = {out['eps']}: ξ* = ⟨{', '.join(map(str, out['chosen']['arch']))}⟩ "
              f"(W = {out['chosen']['w']} at s = {out['interval']} epochs); trained {out['trained_candidates']} "
              f"of {out['grid_candidates']} candidates × {len(out['thetas'])} learning rates")
        for row in out["by_eps"]:
            print(f"  ε = {row['eps']}: s = {row['interval']} epochs, ξ* = ⟨{', '.join(map(str, row['arch']))}⟩, W = {row['w']}")
        print(f"exhaustive ({ex['interval']} epochs): optimum ⟨{', '.join(map(str, ex['arch']))}⟩ W = {ex['w']}; "
              f"ξ* there W = {ex['chosen_w']}; within (1 + ε): {ex['within_1_plus_eps']}")
    return 0 if out["exhaustive"]["within_1_plus_eps"] else 1


if __name__ == "__main__":
    sys.exit(cli_main(main))
