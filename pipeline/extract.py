"""Stage `extract`: the published extraction over the source's sub-architectures -- every candidate
× every θ trained for the interval s(ε), W maximised -- its Pareto front and ξ* for several ε.

Reads the `extract` section of params.yaml (bort.extraction.bert.ExtractConfig); writes every
candidate to the candidate table (a DVC plot), the front's figure, and ξ*, the rank stability and
the work done to the metrics file; journals finished candidates under --checkpoint so an
interrupted run resumes. On CPU the candidates train in `workers` one-thread processes; on GPU
contexts (params.yaml `device`, bort.device) in-process, data-parallel, in mixed precision; on a
Dask cluster's workers when `workers` names one (bort.cluster).

  python pipeline/extract.py --teacher models/teacher --corpus data/corpus --checkpoint models/extract_ckpt \
      --candidates reports/candidates.csv --plot reports/pareto.png --metrics metrics/extract.json
"""
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm                                                          # noqa: E402

from bort import checkpoint, cli, device, distillation as kd, extraction, plots, teacher, workers  # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.extraction import bert                                              # noqa: E402
from bort.io import read_lines, to_csv, write_json, write_text                # noqa: E402

log = logging.getLogger("extract")


def main(argv=None) -> int:
    args = cli.parser(__doc__, {
        "teacher": "the source model folder", "corpus": "folder with train.txt and heldout.txt",
        "checkpoint": "folder for the journal of finished candidates (kept between runs)",
        "candidates": "output: every candidate (CSV)", "plot": "output: the Pareto front (PNG)",
        "metrics": "output: ξ*, the front's size, the rank stability (JSON)"}).parse_args(argv)
    setup_logging()
    cfg = bert.ExtractConfig.load("extract")
    started = time.perf_counter()
    ctx = device.contexts()
    device.mixed_precision(ctx)                    # GPUs only: the candidates train
    model, vocab, source = teacher.load_model(args.teacher)
    device.place(model, ctx[:1])                   # the teacher's forward passes: the first context
    kd.seed_everything(cfg.seed)
    train_ids = kd.corpus_chunks(vocab, read_lines(args.corpus / "train.txt"), cfg.chunk_len, cfg.train_chunks)
    held_ids = kd.corpus_chunks(vocab, read_lines(args.corpus / "heldout.txt"), cfg.chunk_len, cfg.heldout_chunks)
    data = bert.Data.compact(kd.param_arrays(model), source, train_ids, kd.teacher_targets(model, train_ids),
                             held_ids, kd.teacher_targets(model, held_ids))
    teacher_files = [args.teacher / name for name in ("model.params", "vocab.json", "arch.json")]
    journal = bert.Journal(args.checkpoint / "journal.jsonl", bert.fingerprint(
        cfg, ctx, *teacher_files, args.corpus / "train.txt", args.corpus / "heldout.txt"))
    family = bert.BertFamily(source, cfg, data, ctx, journal)
    space = family.space()
    log.info("%d candidates × %d learning rates; s(ε=%g) = %d steps (and 2s); teacher states on %s, "
             "candidates on %s", len(space), len(family.thetas), cfg.eps,
             extraction.interval(cfg.eps, cfg.steps_per_unit_eps), ctx[0],
             device.label(ctx) if device.uses_gpu(ctx) and not workers.is_cluster(cfg.workers)
             else workers.describe(cfg.workers))
    bar = tqdm(total=len(space), initial=len(set(space) & set(journal.done)), desc="extract (candidates)",
               file=sys.stderr)

    def progress(point, errors):
        bar.update(1)
        bar.set_postfix_str(f"⟨{', '.join(map(str, point))}⟩ e={min(e[-1] for e in errors):.3f}")

    result = extraction.extract(family, cfg.eps, cfg.steps_per_unit_eps, cfg.other_eps, progress)
    bar.close()
    write_text(args.candidates, to_csv(extraction.columns(result), extraction.rows(result)))
    plots.pareto(result, args.plot)
    summary = extraction.summary(result)
    best = family.arch(result.chosen.best.point)
    summary["chosen"].update(effective_params=best.effective_params, total_params=best.total_params,
                             flops_per_seq=best.flops_per_seq(cfg.seq_len))
    summary["source"] = {"arch": list(source.tuple), "effective_params": source.effective_params,
                         "flops_per_seq": source.flops_per_seq(cfg.seq_len)}
    summary.update(init=cfg.init, seq_len=cfg.seq_len)
    write_json(args.metrics, summary)
    checkpoint.clear(args.checkpoint)              # the outputs are written: resume no more
    for row in summary["by_eps"]:
        log.info("ε = %g: s = %d steps, ξ* = %s, W = %.4f", row["eps"], row["interval"], row["arch"], row["w"])
    log.info("rank stability (Spearman, e at s vs 2s over %d candidates): %.3f; Pareto front: %d; took %.1f s",
             len(space), result.rank_stability, len(result.front), time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
