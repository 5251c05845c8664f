import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from bort import checkpoint, corpus, hf_checkpoint, pretraining, ranks, teacher
from bort.arch import Arch
from bort.errors import BortError
from conftest import ROOT

TINY = {"loss": "hidden", "intermediate": False, "init": "teacher", "steps": 30, "batch_size": 8,
        "seq_len": 32, "lr": 0.001, "warmup_fraction": 0.1, "mask_rate": 0.15, "checkpoint_every": 5,
        "train_chunks": 48, "task_texts": False, "heldout_chunks": 8, "seed": 0, "mlm_weight": 1.0, "kd_weight": 1.0,
        "temperature": 1.0, "kd_form": "companion", "distributed": "none"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A minimal project folder for pipeline/pretrain.py: real teacher, real corpus, tiny student."""
    root = tmp_path_factory.mktemp("proj")
    model, vocab, arch = hf_checkpoint.convert_hf_bert(teacher.minilm_dir())
    teacher.save_model(model, vocab, arch, root / "models" / "teacher")
    docs = corpus.embedded_documents()
    (root / "data" / "corpus").mkdir(parents=True)
    (root / "data" / "corpus" / "train.txt").write_text("\n".join(docs[:300]) + "\n")
    (root / "data" / "corpus" / "heldout.txt").write_text("\n".join(docs[-40:]) + "\n")
    (root / "metrics").mkdir()
    (root / "metrics" / "extract.json").write_text(json.dumps(
        {"chosen": {"arch": [2, 4, 64, 128], "error": 0.9}, "interval": 5}))
    return root


def write_params(root: Path, **changes):
    (root / "params.yaml").write_text(yaml.safe_dump({"device": "cpu", "pretrain": dict(TINY, **changes)}))


def start(root: Path):
    paths = ["--teacher", "models/teacher", "--corpus", "data/corpus", "--tasks", "data/tasks",
             "--extract", "metrics/extract.json", "--out", "models/student", "--checkpoint", "models/pretrain_ckpt",
             "--loss-curve", "reports/pretrain_loss.csv", "--metrics", "metrics/pretrain.json", "--speed", "metrics/pretrain_speed.json"]
    return subprocess.Popen([sys.executable, str(ROOT / "pipeline" / "pretrain.py"), *paths], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_tiny_run_lowers_the_loss(project):
    write_params(project)
    shutil.rmtree(project / "models" / "pretrain_ckpt", ignore_errors=True)
    proc = start(project)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    m = json.loads((project / "metrics" / "pretrain.json").read_text())
    assert m["heldout_loss_final"] < m["heldout_loss_initial"] < m["heldout_loss_random_init"]
    assert (project / "models" / "student" / "model.params").exists()
    (project / "reference.json").write_text(json.dumps(m))


def test_killed_run_resumes_from_its_checkpoint(project):
    reference = json.loads((project / "reference.json").read_text())
    write_params(project)
    ckpt = project / "models" / "pretrain_ckpt"
    shutil.rmtree(ckpt, ignore_errors=True)
    proc = start(project)
    deadline = time.time() + 240
    while time.time() < deadline:
        state = ckpt / "state.json"
        if state.exists() and json.loads(state.read_text())["step"] >= 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = checkpoint.load_state(ckpt)["step"]            # verified: the kill left no torn files
    assert 10 <= step < TINY["steps"]
    proc = start(project)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert f"resuming from checkpoint models/pretrain_ckpt at step {step}" in err
    resumed = json.loads((project / "metrics" / "pretrain.json").read_text())
    assert resumed["heldout_loss_final"] == pytest.approx(reference["heldout_loss_final"], abs=1e-5)


def test_corrupted_checkpoint_is_reported(project, tmp_path):
    ckpt = project / "models" / "pretrain_ckpt"
    copy = tmp_path / "ckpt"
    shutil.copytree(ckpt, copy)
    with open(copy / "student.params", "r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(BortError, match=r"student.params: corrupted checkpoint: SHA-256 does not match"):
        checkpoint.load_state(copy)


def test_horovod_missing_is_a_clear_error():
    with pytest.raises(BortError, match="horovod.mxnet is not installed"):
        ranks.Horovod()


def test_mlm_kl_loss_trains_with_an_mlm_teacher():
    import mxnet as mx
    import gluonnlp as nlp
    from bort import distillation as kd
    vocab = nlp.vocab.BERTVocab(nlp.data.count_tokens([f"w{i}" for i in range(120)]))
    t_arch = Arch(2, 2, 32, 64, vocab_size=len(vocab), max_length=32)
    kd.seed_everything(0)
    mlm_teacher = t_arch.build(decoder=True)
    mlm_teacher.initialize(mx.init.Normal(0.2))
    cfg = pretraining.PretrainConfig(**{**{k: v for k, v in TINY.items() if k != "distributed"},
                                        "loss": "mlm_kl", "seq_len": 16})
    ids = np.random.RandomState(0).randint(10, len(vocab), (16, 16))
    mlm_teacher(mx.nd.array(ids), mx.nd.zeros((16, 16)), mx.nd.full((16,), 16), mx.nd.zeros((16, 2)))
    student = pretraining.Student(Arch(1, 2, 16, 32, vocab_size=len(vocab), max_length=32), t_arch,
                                  kd.param_arrays(mlm_teacher), cfg)
    masked, chosen = kd.mask_tokens(ids, vocab, np.random.RandomState(1), 0.3)
    trainer = mx.gluon.Trainer(student.params(), "adam", {"learning_rate": 0.01})
    losses = []
    for _ in range(15):
        with mx.autograd.record():
            loss = student.mlm_kl_loss(mlm_teacher, masked.astype(np.float32), ids, chosen)
        loss.backward()
        trainer.step(1, ignore_stale_grad=True)
        losses.append(float(loss.asscalar()))
    assert losses[-1] < losses[0]


def test_mlm_kl_needs_an_mlm_head():
    with pytest.raises(BortError, match="teacher has no MLM head"):
        pretraining.pretrain(type("T", (), {"decoder": None})(), None, None, None, [], [],
                             pretraining.PretrainConfig(loss="mlm_kl"), Path("/nonexistent"))
