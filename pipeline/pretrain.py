"""Stage `pretrain`: distil the teacher into the architecture that `extract` chose.

Writes models/student/ (params, arch.json, vocab.json), metrics/pretrain.json (held-out
distillation losses: distilled, untrained, random-init, and at the extraction interval),
metrics/pretrain_speed.json (tokens/s; not deterministic), reports/pretrain_loss.csv (DVC plot).
The checkpoint folder models/pretrain_ckpt/ persists across runs, so a killed run resumes.
Run data-parallel with `horovodrun -np N python pipeline/pretrain.py` and
`pretrain.distributed: horovod`.
"""
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort import params, pretraining, teacher                                 # noqa: E402
from bort.arch import Arch                                                    # noqa: E402
from bort.errors import BortError, cli_main, setup_logging                    # noqa: E402
from bort.io import write_json, write_text                                    # noqa: E402

log = logging.getLogger("pretrain")
CKPT = Path("models/pretrain_ckpt")
SCHEMA = {name: type(value) if not isinstance(value, bool) else bool
          for name, value in asdict(pretraining.PretrainConfig()).items()}
SCHEMA["distributed"] = str


def main(argv=None) -> int:
    setup_logging()
    p = params.section("pretrain", SCHEMA)
    distributed = p.pop("distributed")
    cfg = pretraining.PretrainConfig(**p)
    model, vocab, teacher_arch = teacher.load_model(Path("models/teacher"))
    extracted = json.loads(Path("metrics/extract.json").read_text())
    chosen = extracted["chosen"]["arch"]
    student_arch = Arch(*chosen, vocab_size=teacher_arch.vocab_size, max_length=teacher_arch.max_length,
                        token_types=teacher_arch.token_types)
    log.info("student %s from teacher %s, loss %s, %d steps", student_arch, teacher_arch, cfg.loss, cfg.steps)
    train_docs = Path("data/corpus/train.txt").read_text(encoding="utf-8").splitlines()
    held_docs = Path("data/corpus/heldout.txt").read_text(encoding="utf-8").splitlines()
    probe = extracted["steps_per_candidate"]
    student, metrics, history, speed, (train, held) = pretraining.pretrain(
        model, teacher_arch, vocab, student_arch, train_docs, held_docs, cfg, CKPT, distributed,
        probe_steps=(probe,))
    if speed["rank"] != 0:
        return 0                                   # under Horovod only rank 0 writes outputs
    random_cfg = pretraining.PretrainConfig(**dict(asdict(cfg), init="random"))
    metrics["heldout_loss_random_init"] = pretraining.untrained_loss(model, teacher_arch, student_arch,
                                                                     train, held, random_cfg)
    at_probe = [h["heldout_loss"] for h in history if h["step"] == probe and "heldout_loss" in h]
    metrics["heldout_loss_at_extraction_interval"] = at_probe[0] if at_probe else None
    metrics["extraction_interval_steps"] = probe
    metrics["extraction_surrogate_error"] = extracted["chosen"]["error"]
    metrics.pop("resumed_from_step")
    metrics.update(student_arch=list(student_arch.tuple), loss=cfg.loss, init=cfg.init)
    teacher.save_model(student.model, vocab, student_arch, Path("models/student"))
    write_json("metrics/pretrain.json", metrics)
    write_json("metrics/pretrain_speed.json", speed, digits=2)
    rows = ["step,train_loss,heldout_loss"] + [
        f'{h["step"]},{h["train_loss"]:.6f},{h["heldout_loss"]:.6f}' if "heldout_loss" in h
        else f'{h["step"]},{h["train_loss"]:.6f},' for h in history]
    write_text("reports/pretrain_loss.csv", "\n".join(rows) + "\n")
    log.info("held-out distillation loss: untrained %.4f, random init %.4f -> distilled %.4f; %s tokens/s",
             metrics["heldout_loss_initial"], metrics["heldout_loss_random_init"], metrics["heldout_loss_final"],
             "n/a (resumed at the end)" if speed["tokens_per_s"] is None else f'{speed["tokens_per_s"]:.0f}')
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
