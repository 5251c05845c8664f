"""Stage `report`: reports/report.md and one CSV per table, reports/timing.md, reports/scores.png.

Reads only metrics/ and the extraction's candidate table; every number in a table comes from a
committed metrics file, which came from a stage the repo can repeat.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort import plots, report, tasks                                         # noqa: E402
from bort.arch import Arch                                                    # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.io import write_text                                                # noqa: E402

OUT = Path("reports")


def collect_finetune():
    results = {}
    for model in report.MODELS:
        for name in tasks.TASKS:
            data = report.load_json(Path("metrics/finetune") / model / f"{name}.json")
            if data:
                results.setdefault(model, {})[name] = data
    return results


def main(argv=None) -> int:
    setup_logging()
    prepare = report.load_json("metrics/prepare.json") or {}
    extract = report.load_json("metrics/extract.json") or {}
    pretrain = report.load_json("metrics/pretrain.json") or {}
    source_info = json.loads(Path("models/teacher/arch.json").read_text()) if Path("models/teacher/arch.json").exists() \
        else report.load_json("metrics/teacher.json")["arch"]
    source = Arch.from_dict({k: source_info[k] for k in Arch.__dataclass_fields__})
    student = Arch(*extract["chosen"]["arch"], vocab_size=source.vocab_size) if extract else None
    finetune = collect_finetune()
    floor = prepare.get("floor_tfidf_logreg", {})
    data_note = ("generated embedded tasks (bort/embedded.py), official file formats"
                 if prepare.get("data_source") == "embedded" else "the official task files")
    sections = ["# BERT vs Bort: regenerated tables", "",
                f"Data: {data_note}. Source/teacher: {source} (`teacher` stage). Student: "
                f"{student} chosen by the FPTAS (`extract`), distilled by `pretrain`. Scores are percentages "
                "on held-out data that Agora never saw (the column *measured on* says which); published "
                "numbers are the paper's test-server scores at paper scale, shown for reference only.", ""]
    header, rows = report.architecture_rows(source, student)
    write_text(OUT / "architectures.csv", report.to_csv(header, rows))
    sections += ["## Architectures: published vs counted", "",
                 "Counted = the analytic count, equal to an instantiated GluonNLP 0.10 BERTModel (pooler, no "
                 "decoder, 2 token types, 512 positions).", "", report.to_markdown(header, rows), ""]
    for suite in ("glue", "superglue", "race"):
        header, rows = report.task_rows(suite, finetune, floor)
        write_text(OUT / f"{suite}.csv", report.to_csv(header, rows))
        sections += [f"## {report.suite_label(suite)}", "", report.to_markdown(header, rows), ""]
    wins = [n for n in tasks.TASKS if n in finetune.get("bort", {}) and n in finetune.get("bort-agora", {})
            and finetune["bort-agora"][n]["task_score"] > finetune["bort"][n]["task_score"]]
    compared = [n for n in tasks.TASKS if n in finetune.get("bort", {}) and n in finetune.get("bort-agora", {})]
    if compared:
        sections += [f"Bort + Agora beats Bort alone on {len(wins)} of {len(compared)} tasks: "
                     f"{', '.join(tasks.DISPLAY_NAMES.get(n, n) for n in wins) or 'none'}.", ""]
    header, rows = report.agora_rows(finetune)
    write_text(OUT / "agora.csv", report.to_csv(header, rows))
    sections += ["## Agora rounds", "", "Measured on Agora's own split of dev (which it reads); the labeler is "
                 "the fine-tuned source model of the same task.", "", report.to_markdown(header, rows), ""]
    header, rows = report.front_rows(Path("models/extract/candidates.csv"))
    write_text(OUT / "front.csv", report.to_csv(header, rows))
    if extract:
        sections += ["## Extraction: the Pareto front", "",
                     f"FPTAS ({extract['mode']}, ε = {extract['eps']}, α = {extract['alpha']}, β = {extract['beta']}): "
                     f"trained {extract['trained_candidates']} of {extract['grid_candidates']} candidates "
                     f"({extract['classes']} (1+ε)-classes, {extract['steps_per_candidate']} distillation steps each). "
                     "Surrogate error e = held-out distillation loss normalised so that 1.0 is the constant predictor.",
                     "", report.to_markdown(header, rows), "", "![Pareto front](pareto.png)", ""]
    if pretrain:
        sections += ["## Pretraining by distillation", "",
                     f"Held-out hidden-state distillation loss of the student {student}: untrained (teacher "
                     f"sub-matrices) {pretrain['heldout_loss_initial']:.4f}, random init "
                     f"{pretrain['heldout_loss_random_init']:.4f}, after the extraction interval "
                     f"({pretrain['extraction_interval_steps']} steps) {pretrain['heldout_loss_at_extraction_interval']:.4f}, "
                     f"distilled ({pretrain['steps']} steps, {pretrain['tokens_seen']:,} tokens) "
                     f"**{pretrain['heldout_loss_final']:.4f}**.", ""]
    int8 = report.load_json("metrics/int8.json")
    if int8:
        header, rows = report.int8_rows(int8)
        write_text(OUT / "int8.csv", report.to_csv(header, rows))
        mean = int8["mean_task_score"]
        sections += ["## Bort in int8: the accuracy cost", "",
                     "Each fine-tuned student with its dense layers quantised to int8 (oneDNN, `bort.quantize`; "
                     f"calibrated on {int8['calibration_examples']} training instances of its task), scored on the "
                     "same held-out split as in fp32. The speed gain is in [timing.md](timing.md).", "",
                     report.to_markdown(header, rows), "",
                     f"Mean task score: fp32 {100 * mean['fp32']:.1f}, int8 {100 * mean['int8']:.1f} "
                     f"({100 * (mean['int8'] - mean['fp32']):+.1f} points).", ""]
    sections += ["Timing lives in [timing.md](timing.md) (never byte-identical).", "",
                 "![scores](scores.png)", ""]
    write_text(OUT / "report.md", "\n".join(sections))
    write_text(OUT / "timing.md", report.timing_markdown(report.load_json("metrics/timing.json")))
    plots.scores(finetune, floor, OUT / "scores.png")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
