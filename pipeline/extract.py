"""Stage `extract`: the FPTAS over the source's sub-architectures, its Pareto front and ξ*.

Reads the `extract` section of params.yaml; writes every candidate to <out>/candidates.csv, the
trained ones to the front CSV (a DVC plot) and its figure, and the chosen architecture and the
work done to the metrics file. Runs on params.yaml `device` (bort.device): the teacher's targets
on the first context; each candidate's short training data-parallel over all of them (GPUs in
mixed precision), scored on the first -- the same surrogate errors as one context to float rounding.

  python pipeline/extract.py --teacher models/teacher --corpus data/corpus --out models/extract \
      --front reports/pareto.csv --plot reports/pareto.png --metrics metrics/extract.json
"""
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm                                                          # noqa: E402

from bort import cli, device, distillation as kd, extraction, plots, teacher  # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.io import read_lines, to_csv, write_json, write_text                # noqa: E402

log = logging.getLogger("extract")


def main(argv=None) -> int:
    args = cli.parser(__doc__, {
        "teacher": "the source model folder", "corpus": "folder with train.txt and heldout.txt",
        "out": "output folder: candidates.csv", "front": "output: trained candidates (CSV)",
        "plot": "output: the Pareto front (PNG)", "metrics": "output: the chosen ξ* (JSON)"}).parse_args(argv)
    setup_logging()
    p = extraction.ExtractConfig.load("extract")
    started = time.perf_counter()
    ctx = device.contexts()
    device.mixed_precision(ctx)                    # GPUs only: the candidates train
    model, vocab, source = teacher.load_model(args.teacher)
    device.place(model, ctx[:1])                   # the teacher's forward passes: the first context
    log.info("teacher targets on %s; candidate trainings on %s", ctx[0], device.label(ctx))
    kd.seed_everything(p.seed)
    space = extraction.search_space(source, p.space.depth, p.space.num_heads, p.space.hidden_size,
                                    p.space.intermediate_size)
    candidates = extraction.make_candidates(space, source, p.eps, p.alpha, p.beta, p.seq_len)
    steps = extraction.budget_steps(p.eps, p.steps_per_unit_eps)
    log.info("%d candidates in %d (1+ε)-classes; %d distillation steps per trained candidate",
             len(candidates), len({c.cell for c in candidates}), steps)
    train_ids = kd.corpus_chunks(vocab, read_lines(args.corpus / "train.txt"), p.chunk_len, p.train_chunks)
    held_ids = kd.corpus_chunks(vocab, read_lines(args.corpus / "heldout.txt"), p.chunk_len, p.heldout_chunks)
    train_targets, held_targets = kd.teacher_targets(model, train_ids), kd.teacher_targets(model, held_ids)
    error_fn = kd.SurrogateError(kd.param_arrays(model), source.hidden_size, train_ids, train_targets, held_ids,
                                 held_targets, steps, p.batch_size, p.lr, p.seed, p.init, ctx=ctx)
    bar = tqdm(total=len(candidates), desc="extract (trained)", file=sys.stderr)

    def progress(c):
        bar.update(1)
        bar.set_postfix_str(f"{c.arch} e={c.error:.3f} W={c.w:.5f}")

    result = extraction.extract(candidates, p.eps, p.mode, error_fn, steps, progress, p.max_error)
    bar.close()
    best = result.best
    log.info("chosen %s: p=%d i=%d e=%.4f W=%.6f; trained %d of %d", best.arch, best.params, best.flops,
             best.error, best.w, result.trained, len(candidates))
    rows = extraction.candidate_rows(result)
    error = extraction.COLUMNS.index("error")
    write_text(args.out / "candidates.csv", to_csv(extraction.COLUMNS, rows))
    write_text(args.front, to_csv(extraction.COLUMNS, [r for r in rows if r[error] != ""]))
    plots.pareto(result, args.plot)
    write_json(args.metrics, {
        "chosen": {"arch": list(best.arch.tuple), "depth": best.arch.depth, "num_heads": best.arch.num_heads,
                   "hidden_size": best.arch.hidden_size, "intermediate_size": best.arch.intermediate_size,
                   "effective_params": best.params, "total_params": best.arch.total_params,
                   "flops_per_seq": best.flops, "error": best.error, "w": best.w, "cost": best.cost},
        "source": {"arch": list(source.tuple), "effective_params": source.effective_params,
                   "flops_per_seq": source.flops_per_seq(p.seq_len)},
        "grid_candidates": len(candidates), "classes": result.classes, "trained_candidates": result.trained,
        "pruned_candidates": sum(c.status == "pruned" for c in candidates),
        "front_size": len(result.front), "eps": p.eps, "mode": p.mode, "steps_per_candidate": steps,
        "alpha": p.alpha, "beta": p.beta, "max_error": p.max_error,
    })
    log.info("extract took %.1f s", time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
