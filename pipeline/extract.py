"""Stage `extract`: the FPTAS over the source's sub-architectures, its Pareto front and ξ*.

Reads the `extract` section of params.yaml; writes models/extract/candidates.csv (every
candidate), metrics/extract.json (the chosen architecture and the work done), reports/pareto.csv
(the trained candidates, a DVC plot) and reports/pareto.png.
"""
import csv
import io
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm                                                          # noqa: E402

from bort import distillation as kd, extraction, params, plots, teacher       # noqa: E402
from bort.errors import BortError, cli_main, setup_logging                    # noqa: E402
from bort.io import write_json, write_text                                    # noqa: E402

log = logging.getLogger("extract")
SCHEMA = {"mode": str, "eps": float, "alpha": float, "beta": float, "seq_len": int, "space": dict,
          "steps_per_unit_eps": int, "batch_size": int, "chunk_len": int, "train_chunks": int,
          "heldout_chunks": int, "lr": float, "seed": int, "init": str, "max_error": float}
COLUMNS = ["depth", "num_heads", "hidden_size", "intermediate_size", "effective_params", "flops_per_seq",
           "cost", "error", "w", "status", "on_front", "chosen"]


def rows(result):
    for c in sorted(result.candidates, key=lambda c: c.arch.tuple):
        yield [*c.arch.tuple, c.params, c.flops, round(c.cost, 8),
               "" if c.error is None else round(c.error, 6), "" if c.w is None else round(c.w, 8),
               c.status, int(c.on_front), int(c is result.best)]


def to_csv(header, body) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return buf.getvalue()


def main(argv=None) -> int:
    setup_logging()
    p = params.section("extract", SCHEMA)
    space_keys = ("depth", "num_heads", "hidden_size", "intermediate_size")
    if sorted(p["space"]) != sorted(space_keys):
        raise BortError(f"params.yaml: key extract.space: expected lists for {list(space_keys)}, got {sorted(p['space'])}")
    started = time.perf_counter()
    model, vocab, source = teacher.load_model(Path("models/teacher"))
    kd.seed_everything(p["seed"])
    space = extraction.search_space(source, *(p["space"][k] for k in space_keys))
    candidates = extraction.make_candidates(space, source, p["eps"], p["alpha"], p["beta"], p["seq_len"])
    steps = extraction.budget_steps(p["eps"], p["steps_per_unit_eps"])
    log.info("%d candidates in %d (1+ε)-classes; %d distillation steps per trained candidate",
             len(candidates), len({c.cell for c in candidates}), steps)
    train_docs = Path("data/corpus/train.txt").read_text(encoding="utf-8").splitlines()
    held_docs = Path("data/corpus/heldout.txt").read_text(encoding="utf-8").splitlines()
    train_ids = kd.corpus_chunks(vocab, train_docs, p["chunk_len"], p["train_chunks"])
    held_ids = kd.corpus_chunks(vocab, held_docs, p["chunk_len"], p["heldout_chunks"])
    error_fn = kd.SurrogateError(kd.param_arrays(model), source.hidden_size, train_ids,
                                 kd.teacher_targets(model, train_ids), held_ids,
                                 kd.teacher_targets(model, held_ids), steps, p["batch_size"], p["lr"],
                                 p["seed"], p["init"])
    bar = tqdm(total=len(candidates), desc="extract (trained)", file=sys.stderr)

    def progress(c):
        bar.update(1)
        bar.set_postfix_str(f"{c.arch} e={c.error:.3f} W={c.w:.5f}")

    result = extraction.extract(candidates, p["eps"], p["mode"], error_fn, steps, progress, p["max_error"])
    bar.close()
    best = result.best
    log.info("chosen %s: p=%d i=%d e=%.4f W=%.6f; trained %d of %d", best.arch, best.params, best.flops,
             best.error, best.w, result.trained, len(candidates))
    Path("models/extract").mkdir(parents=True, exist_ok=True)
    write_text("models/extract/candidates.csv", to_csv(COLUMNS, rows(result)))
    write_text("reports/pareto.csv", to_csv(COLUMNS, [r for r in rows(result) if r[7] != ""]))
    plots.pareto(result, "reports/pareto.png")
    write_json("metrics/extract.json", {
        "chosen": {"arch": list(best.arch.tuple), "depth": best.arch.depth, "num_heads": best.arch.num_heads,
                   "hidden_size": best.arch.hidden_size, "intermediate_size": best.arch.intermediate_size,
                   "effective_params": best.params, "total_params": best.arch.total_params,
                   "flops_per_seq": best.flops, "error": best.error, "w": best.w, "cost": best.cost},
        "source": {"arch": list(source.tuple), "effective_params": source.effective_params,
                   "flops_per_seq": source.flops_per_seq(p["seq_len"])},
        "grid_candidates": len(candidates), "classes": result.classes, "trained_candidates": result.trained,
        "pruned_candidates": sum(c.status == "pruned" for c in candidates),
        "front_size": len(result.front), "eps": p["eps"], "mode": p["mode"], "steps_per_candidate": steps,
        "alpha": p["alpha"], "beta": p["beta"], "max_error": p["max_error"],
    })
    log.info("extract took %.1f s", time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
