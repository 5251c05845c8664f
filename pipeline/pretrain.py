"""Stage `pretrain`: distil the teacher into the architecture that `extract` chose.

Writes the student model folder, the held-out distillation losses (distilled, untrained,
random-init, and at the extraction interval), the throughput (tokens/s; not deterministic, its own
file) and the loss curve (a DVC plot; under `loss: mlm_kl` also the companion code's terms
mlm_ce, teacher_ce and teacher_mse per step, the last only logged). The checkpoint folder persists
across runs, so a killed run resumes. Runs on params.yaml `device` (bort.device): several contexts
train data-parallel in this process, GPUs in mixed precision; or run data-parallel with
`pretrain.distributed: horovod` under `horovodrun -np N` (one context per rank, fp32).

  python pipeline/pretrain.py --teacher models/teacher --corpus data/corpus --tasks data/tasks \
      --extract metrics/extract.json --out models/student --checkpoint models/pretrain_ckpt \
      --loss-curve reports/pretrain_loss.csv --metrics metrics/pretrain.json --speed metrics/pretrain_speed.json
"""
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort import cli, corpus, device, pretraining, teacher                    # noqa: E402
from bort.arch import read_student                                            # noqa: E402
from bort.errors import BortError, cli_main, setup_logging                    # noqa: E402
from bort.io import read_lines, write_json, write_text                        # noqa: E402

log = logging.getLogger("pretrain")


def main(argv=None) -> int:
    args = cli.parser(__doc__, {
        "teacher": "the teacher model folder", "corpus": "folder with train.txt and heldout.txt",
        "tasks": "the task folders (prepare stage): their training texts join the corpus with pretrain.task_texts",
        "extract": "the extract stage's metrics (ξ*)", "out": "output: the student model folder",
        "checkpoint": "checkpoint folder (persists; a killed run resumes)",
        "loss-curve": "output: losses per step (CSV)", "metrics": "output: held-out losses (JSON)",
        "speed": "output: throughput (JSON, not deterministic)"}).parse_args(argv)
    setup_logging()
    cfg = pretraining.PretrainConfig.load("pretrain")
    ctx = pretraining.rank_contexts(cfg, device.contexts())   # horovod: one context per rank
    if cfg.distributed == "none":
        device.mixed_precision(ctx)                 # GPUs only; Horovod ranks stay fp32
    model, vocab, teacher_arch = teacher.load_model(args.teacher, mlm_head=cfg.loss == "mlm_kl")
    student_arch = read_student(args.extract, args.teacher / "arch.json")
    extracted = json.loads(args.extract.read_text())
    log.info("student %s from teacher %s, loss %s, %d steps on %s", student_arch, teacher_arch, cfg.loss,
             cfg.steps, device.label(ctx))
    probe = extracted.get("interval")
    if not isinstance(probe, int):
        raise BortError(f"{args.extract}: expected the extract stage's metrics with an integer 'interval' "
                        f"(the extraction's s(ε)), got {probe!r}; run `dvc repro extract`")
    documents = read_lines(args.corpus / "train.txt")
    if cfg.task_texts:                             # task-specific distillation (bort.corpus.task_texts)
        documents = documents + corpus.training_texts(args.tasks)
    student, metrics, history, speed, (train, held) = pretraining.pretrain(
        model, teacher_arch, vocab, student_arch, documents,
        read_lines(args.corpus / "heldout.txt"), cfg, args.checkpoint, probe_steps=(probe,), ctx=ctx)
    if speed["rank"] != 0:
        return 0                                   # under Horovod only rank 0 writes outputs
    random_cfg = pretraining.PretrainConfig(**dict(asdict(cfg), init="random"))
    metrics["heldout_loss_random_init"] = pretraining.untrained_loss(model, teacher_arch, student_arch,
                                                                     train, held, random_cfg, ctx)
    at_probe = [h["heldout_loss"] for h in history if h["step"] == probe and "heldout_loss" in h]
    metrics["heldout_loss_at_extraction_interval"] = at_probe[0] if at_probe else None
    metrics["extraction_interval_steps"] = probe
    metrics["extraction_surrogate_error"] = extracted["chosen"]["error"]
    metrics.pop("resumed_from_step")
    metrics.update(student_arch=list(student_arch.tuple), loss=cfg.loss, init=cfg.init)
    teacher.save_model(student.model, vocab, student_arch, args.out)
    write_json(args.metrics, metrics)
    write_json(args.speed, speed, digits=2)
    terms = [t for t in pretraining.LOGGED_TERMS if any(t in h for h in history)]   # mlm_kl only
    rows = [",".join(["step", "train_loss", "heldout_loss", *terms])] + [
        ",".join([str(h["step"]), f'{h["train_loss"]:.6f}', f'{h["heldout_loss"]:.6f}' if "heldout_loss" in h else "",
                  *(f"{h[t]:.6g}" if t in h else "" for t in terms)]) for h in history]
    write_text(args.loss_curve, "\n".join(rows) + "\n")
    log.info("held-out distillation loss: untrained %.4f, random init %.4f -> distilled %.4f; %s tokens/s",
             metrics["heldout_loss_initial"], metrics["heldout_loss_random_init"], metrics["heldout_loss_final"],
             "n/a (resumed at the end)" if speed["tokens_per_s"] is None else f'{speed["tokens_per_s"]:.0f}')
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
