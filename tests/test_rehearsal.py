"""The paper-scale rehearsal's parts (bort.rehearsal): its teacher folder is a BERT the teacher
stage converts with the exact parameter count of its shape, and its params.yaml passes every
section's checks (so a renamed key breaks this test, not a 20-minute rehearsal)."""
import yaml

from bort import params, rehearsal
from bort.arch import Arch
from conftest import ROOT
from test_params import LIBRARY, SECTIONS, _script_section


def test_the_teacher_folder_converts_with_the_count_of_its_shape(tmp_path):
    from bort.hf_checkpoint import convert_hf_bert
    folder = rehearsal.write_teacher(tmp_path / "teacher", shape=(2, 4, 32, 64), max_length=64)
    model, vocab, arch = convert_hf_bert(folder)
    assert arch.tuple == (2, 4, 32, 64) and len(vocab) == arch.vocab_size == 30522
    expected = Arch(2, 4, 32, 64, vocab_size=30522, max_length=64)
    h, v = expected.hidden_size, expected.vocab_size
    mlm_head = (h * h + h) + 2 * h + v                 # transform dense, its LayerNorm, the output bias (tied weight)
    assert sum(p.data().size for p in model.collect_params().values()) == expected.total_params + mlm_head


def test_the_rehearsal_params_pass_every_section(tmp_path):
    data = params.load(ROOT / "params.yaml")
    changed = rehearsal.overrides(data, tmp_path / "teacher", str(tmp_path / "scheduler.json"))
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(changed, sort_keys=False))
    classes = dict(LIBRARY, **{k: _script_section(*v) for k, v in SECTIONS.items()})
    for name, cls in classes.items():
        cls.load(name, path)
    space = changed["extract"]["space"]
    points = [(d, a, h, i) for d in space["depth"] for a in space["num_heads"] for h in space["hidden_size"]
              for i in space["intermediate_size"] if h % a == 0]
    assert len(points) == 300 and (4, 8, 1024, 768) in points          # the paper's count; Bort is in it
    assert data["extract"]["space"] != space                           # the project's own params untouched
