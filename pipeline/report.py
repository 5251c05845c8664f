"""Stage `report`: report.md and one CSV per table, timing.md, scores.png, and report.html (all of
them as one self-contained page, with the extraction's and the timing's figures), into one folder.

Reads only metrics files, the source's arch.json and the extraction's candidate table; every
number in a table comes from a metrics file, which came from a stage the repo can repeat. The
tasks shown are params.yaml `tasks` and the sets their models score.

  python pipeline/report.py --prepare metrics/prepare.json --teacher-arch models/teacher/arch.json \
      --extract metrics/extract.json --candidates reports/candidates.csv \
      --pretrain metrics/pretrain.json --timing metrics/timing.json --int8 metrics/int8.json \
      --finetune metrics/finetune --diagnostics metrics/diagnostics.json --significance metrics/significance.json \
      --witness metrics/witness.json --pareto reports/pareto.png --timing-plot reports/timing.png --out reports
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort import cli, report, report_architecture, report_html, report_runs, tasks  # noqa: E402
from bort.arch import Arch, read_student                                      # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.finetune import MODELS, Layout                                      # noqa: E402
from bort.io import to_csv, write_json, write_text                                        # noqa: E402


def collect_finetune(layout: Layout, diagnostics: dict, shown) -> dict:
    """model -> task -> metrics record: the fine-tuning stages' files, then the diagnostics
    stage's record of the sets scored by their parents' models."""
    results = {}
    for model in MODELS:
        for task in shown:
            data = report.load_json(layout.metrics_file(model, task)) if task.trains else \
                diagnostics.get(model, {}).get(task.name)
            if data:
                results.setdefault(model, {})[task.name] = data
    return results


def main(argv=None) -> int:
    args = cli.parser(__doc__, {
        "prepare": "the prepare stage's metrics", "teacher-arch": "the source's arch.json",
        "extract": "the extract stage's metrics", "candidates": "the extraction's candidate table",
        "pretrain": "the pretrain stage's metrics", "timing": "the time stage's metrics",
        "int8": "the int8 stage's metrics", "finetune": "fine-tuning metrics: <dir>/<model>/<task>.json",
        "diagnostics": "the diagnostics stage's metrics",
        "significance": "the significance stage's intervals and tests",
        "witness": "the learnability witness (`python -m bort.witness --out ...`; committed, not a stage)",
        "pareto": "the extraction's Pareto-front figure", "timing-plot": "the time stage's latency figure",
        "summary": "output: the scores compared across runs (declared as DVC metrics)",
        "out": "output folder"}).parse_args(argv)
    setup_logging()
    selected = tasks.selected()
    names = {t.name for t in selected}
    shown = [t for t in tasks.TASKS.values() if t.name in names or t.scored_by in names]
    prepare = report.load_json(args.prepare) or {}
    extract = report.load_json(args.extract) or {}
    pretrain = report.load_json(args.pretrain) or {}
    source = Arch.read(args.teacher_arch)
    student = read_student(args.extract, args.teacher_arch) if extract else None
    finetune = collect_finetune(Layout(metrics=args.finetune), report.load_json(args.diagnostics) or {}, shown)
    floor = prepare.get("floor_tfidf_logreg", {})
    data_note = ("generated embedded tasks (bort/embedded/), official file formats"
                 if prepare.get("data_source") == "embedded" else "the official task files")
    out = args.out
    sections = ["# BERT vs Bort: regenerated tables", "",
                f"Data: {data_note}. Source/teacher: {source} (`teacher` stage). Student: "
                f"{student} chosen by the extraction (`extract`), distilled by `pretrain`. Scores are percentages "
                "on held-out data that Agora never saw (the column *measured on* says which); published "
                "numbers are the paper's test-server scores at paper scale, shown for reference only.", ""]
    header, rows = report_architecture.architecture_rows(source, student)
    write_text(out / "architectures.csv", to_csv(header, rows))
    sections += ["## Architectures: published vs counted", "",
                 "Counted = the analytic count, equal to an instantiated GluonNLP 0.10 BERTModel (pooler, no "
                 "decoder, 2 token types, 512 positions).", "", report.to_markdown(header, rows), ""]
    significance = report.load_json(args.significance) or {}
    seeds = next((r["seeds"] for m in finetune.values() for r in m.values() if "seeds" in r), [])
    level = significance.get("config", {}).get("confidence", 0.95)
    sections += [f"Every model is fine-tuned once per seed ({len(seeds)} seeds: {', '.join(map(str, seeds))}); a cell "
                 "shows the metrics averaged over the seeds, ± the sample standard deviation of the task score over "
                 f"the seeds, and [the {100 * level:.0f}% bootstrap interval of the task score] over held-out instances "
                 "with the seeds pooled. † in Bort's column: Bort differs significantly from BERT on this task; * in Bort + "
                 "Agora's: it differs significantly from Bort. \"(one class)\": every seed predicts the same class "
                 "for every held-out instance (a degenerate cell). ‡ in the floor's column: the TF-IDF floor beats "
                 "every fine-tuned model. The floor has no interval (one deterministic run).", ""]
    for suite in tasks.SUITES:
        header, rows = report.task_rows(suite, finetune, floor, [t.name for t in shown], significance)
        write_text(out / f"{suite}.csv", to_csv(header, rows))
        table = report.to_markdown(header, rows) if tasks.suite_tasks(suite, [t.name for t in shown]) else \
            "No task of this suite is in params.yaml `tasks`."
        sections += [f"## {report.suite_label(suite)}", "", table, ""]
    counts = report.significance_counts(significance, finetune, [t.name for t in shown])
    if counts:
        sections += ["## What the differences mean", ""] + [f"- {line}" for line in counts] + [""]
    flagged = report.degenerate_cells(significance, finetune, floor, [t.name for t in shown])
    if flagged:
        sections += ["### Degenerate cells", "", "Cells that measure nothing until explained, each with the cause "
                     "its training records measure:", ""] + [f"- {line}" for line in flagged] + [""]
    header, rows = report.seed_rows(finetune, [t.name for t in shown])
    write_text(out / "seeds.csv", to_csv(header, rows))          # a declared output, even when empty
    if rows:
        sections += ["### Suite scores seed by seed", "", "Each suite score computed from one seed's runs "
                     "alone: a conclusion that holds in every column does not hang on one seed.", "",
                     report.to_markdown(header, rows), ""]
    header, rows = report_runs.settings_rows(finetune)
    write_text(out / "settings.csv", to_csv(header, rows))
    sections += ["## Fine-tuning settings chosen on dev", "",
                 "Each model's settings are chosen per task from the preset's grid (params.yaml "
                 "`finetune.presets.<preset>.search`): every point is fine-tuned with the first seed for the first "
                 "`finetune.search_rung` of its epochs (its learning-rate schedule the full run's) and scored on "
                 "Agora's dev split, never on the held-out rows; the best (in bold; the first listed on a tie) "
                 "continues to the end as the first seed's run and trains every other seed, and Bort + Agora "
                 "continues Bort's. A thresholded task (MultiRC) predicts true where "
                 "P(true) reaches a threshold fitted on Agora's dev split for its task score. Held-out rows whose input "
                 "also occurs in training (or, with a labelled test split, in Agora's dev) are dropped from the "
                 "held-out split for every model and the floor alike.", "", report.to_markdown(header, rows), ""]
    witness = report.load_json(args.witness)
    header, rows = report_runs.witness_rows(witness, finetune, significance)
    write_text(out / "witness.csv", to_csv(header, rows))
    if rows:
        w = witness["settings"]
        sections += ["## Learnability witness", "",
                     "Can the source learn a task from its training rows at all? The witness fine-tunes it fully "
                     f"(every cell and the embeddings, {w['epochs']} epochs, lr {w['lr']:g}, seed {witness['seed']}; "
                     "`python -m bort.witness`, not part of `dvc repro`) and scores it on the same held-out rows. "
                     "A task is learnable when the witness's 95% interval, or a model's, lies above the floor and "
                     "the majority class; one whose witness fits its training rows and still is not is at chance by "
                     "construction, and its cells measure nothing.", "",
                     report.to_markdown(header, rows), ""]
    header, rows = report_runs.agora_rows(finetune)
    write_text(out / "agora.csv", to_csv(header, rows))
    sections += ["## Agora rounds", "", "Agora (bort.agora; README \"Agora\") halves its own split of dev by group: misses "
                 "are drawn from the source half, and a round is judged on the acceptance half, which no new point was "
                 "built from. A new point is a pool text at least `min_similarity` like the segment it replaces, "
                 "labelled by the fine-tuned source model of the same task and seed and kept only when that labeler is "
                 "`min_certainty` sure. Every surviving θ of Θ trains a copy of the student; the best copy replaces "
                 "the student only when it beats it on the acceptance half (accepted), and Θ keeps its better half. "
                 "Scores here are on Agora's dev split, never the held-out rows.", "", report.to_markdown(header, rows), ""]
    losses = report_runs.agora_losses(significance, finetune)
    if losses:
        sections += ["Where Bort + Agora is significantly below Bort, with the measured cause:", "",
                     *[f"- {line}" for line in losses], ""]
    header, rows = report_architecture.front_rows(args.candidates)
    write_text(out / "front.csv", to_csv(header, rows))
    if extract:
        sections += report_architecture.extraction_section(extract, header, rows)
    if pretrain:
        sections += ["## Pretraining by distillation", "",
                     f"Held-out hidden-state distillation loss of the student {student}: untrained (teacher "
                     f"sub-matrices) {pretrain['heldout_loss_initial']:.4f}, random init "
                     f"{pretrain['heldout_loss_random_init']:.4f}, after the extraction interval "
                     f"({pretrain['extraction_interval_steps']} steps) {pretrain['heldout_loss_at_extraction_interval']:.4f}, "
                     f"distilled ({pretrain['steps']} steps, {pretrain['tokens_seen']:,} tokens) "
                     f"**{pretrain['heldout_loss_final']:.4f}**.", ""]
    int8 = report.load_json(args.int8)
    if int8:
        header, rows = report.int8_rows(int8)
        write_text(out / "int8.csv", to_csv(header, rows))
        mean = int8["mean_task_score"]
        sections += ["## Bort in int8: the accuracy cost", "",
                     "Each fine-tuned student with its dense layers quantised to int8 (oneDNN, `bort.quantize`; "
                     f"calibrated on {int8['calibration_examples']} training instances of its task), scored on the "
                     "same held-out split as in fp32. The speed gain is in [timing.md](timing.md).", "",
                     report.to_markdown(header, rows), "",
                     f"Mean task score: fp32 {100 * mean['fp32']:.1f}, int8 {100 * mean['int8']:.1f} "
                     f"({100 * (mean['int8'] - mean['fp32']):+.1f} points).", ""]
    sections += ["Timing lives in [timing.md](timing.md) (never byte-identical).", "",
                 "![Task scores per task and model, with intervals](scores.png)", ""]
    write_text(out / "report.md", "\n".join(sections))
    timing = report_architecture.timing_lines(report.load_json(args.timing))
    write_text(out / "timing.md", "\n".join(timing))
    report.scores_figure(finetune, floor, out / "scores.png", significance)
    figures = {"scores.png": out / "scores.png", "pareto.png": args.pareto, "timing.png": args.timing_plot}
    write_text(out / "report.html", report_html.render(sections, timing, figures))
    write_json(args.summary, report.summary(finetune, significance, sorted(names)), digits=4)
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
