"""A paper-scale rehearsal: the whole stage graph at BERT-large's shape, on this machine.

No paper-scale run had gone through the graph, so nothing showed that every shape, parameter
count and path holds at paper size. This one runs `dvc repro`, stage by stage, in a clone of the
project whose params.yaml is changed only where `overrides` says:
- the teacher is a Hugging Face folder of BERT-large's shape ⟨24, 16, 1024, 4096⟩ (`write_teacher`:
  seeded random weights, N(0, 0.02) as BERT's `initializer_range`, with an MLM head; the vocabulary
  is the embedded MiniLM's, which is BERT's uncased WordPiece vocabulary of 30,522 tokens), so
  nothing is downloaded;
- the extraction searches the paper's space as the README gives it (D ∈ {2, 4, ..., 12},
  A ∈ {4, 8, 12, 16}, H ∈ {512, 768, 1024}, I ∈ {256, 512, 768, 1024, 3072}: 300 candidates)
  with an interval of one step (s = 1, 2s = 2) on a localhost Dask cluster (`dask scheduler` and
  one-thread `dask worker`s, as README "Running on a cluster" starts them);
- pretraining distils ξ* for two steps; one task (RTE) is fine-tuned for one epoch on 48 rows,
  one seed, every model (BERT-large-shaped source, ξ*, ξ* + one Agora round).
Each stage's wall time and the machine's peak memory in use (MemTotal − MemAvailable, sampled
every 0.2 s, above what was in use before the rehearsal: the cluster's workers included) are
printed and written to <out>/rehearsal.json.

It measures nothing about quality: the teacher is random and every budget is one or two steps.

  python -m bort.rehearsal --out /tmp/rehearsal [--workers 2] [--worker-memory auto] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List

from bort.errors import BortError, cli_main, setup_logging
from bort.localhost import LocalCluster

ROOT = Path(__file__).resolve().parents[1]
#: BERT-large (Devlin et al., arXiv 1810.04805, section 3): L = 24, A = 16, H = 1024, I = 4H
BERT_LARGE = (24, 16, 1024, 4096)
#: the paper's extraction space for BERT-large as README "Extraction as published" gives it
PAPER_SPACE = {"depth": [2, 4, 6, 8, 10, 12], "num_heads": [4, 8, 12, 16], "hidden_size": [512, 768, 1024],
               "intermediate_size": [256, 512, 768, 1024, 3072]}
TASK = "RTE"


def write_teacher(folder: Path, shape=BERT_LARGE, seed: int = 0, max_length: int = 512) -> Path:
    """A Hugging Face BertForMaskedLM folder of `shape` with seeded random weights: config.json,
    model.safetensors (float32), vocab.txt (the embedded MiniLM's uncased WordPiece vocabulary)."""
    import numpy as np
    from safetensors.numpy import save_file
    from bort.arch import Arch
    from bort.hf_checkpoint import _expected_shape, hf_name_map
    from bort.teacher import minilm_dir
    vocab = (minilm_dir() / "vocab.txt").read_text(encoding="utf-8")
    depth, heads, hidden, inter = shape
    arch = Arch(depth, heads, hidden, inter, vocab_size=len(vocab.splitlines()), max_length=max_length)
    rng = np.random.default_rng(seed)
    tensors = {}
    for hf, gluon in sorted(hf_name_map(depth, pooler=False, mlm=True).items()):
        size = _expected_shape(arch, gluon)
        if hf.endswith("LayerNorm.weight"):
            value = np.ones(size, np.float32)
        elif hf.endswith(".bias"):
            value = np.zeros(size, np.float32)
        else:
            value = rng.normal(0.0, 0.02, size).astype(np.float32)
        tensors[hf if hf.startswith("cls.") else "bert." + hf] = value
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"))
    config = {"architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_act": "gelu",
              "num_hidden_layers": depth, "num_attention_heads": heads, "hidden_size": hidden,
              "intermediate_size": inter, "vocab_size": arch.vocab_size, "max_position_embeddings": max_length,
              "type_vocab_size": 2, "layer_norm_eps": 1e-12, "position_embedding_type": "absolute",
              "initializer_range": 0.02}
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    (folder / "vocab.txt").write_text(vocab, encoding="utf-8")
    return folder


def overrides(params: dict, teacher: Path, scheduler: str) -> dict:
    """params.yaml for the rehearsal: the embedded default's, with paper-scale shapes and
    one-or-two-step budgets (the module docstring lists what changes and why)."""
    p = json.loads(json.dumps(params))
    p["tasks"] = [TASK]
    p["data"].update(train_size=48, dev_size=48, test_size=48)
    p["teacher"]["name"] = str(teacher)
    p["extract"].update(space=PAPER_SPACE, eps=1.0, other_eps=[], steps_per_unit_eps=1, train_chunks=16,
                        fit_chunks=8, heldout_chunks=8, workers=scheduler)
    p["pretrain"].update(steps=2, batch_size=8, train_chunks=32, heldout_chunks=8, checkpoint_every=1)
    p["agora_pool"].update(per_task=8, corpus_sentences=16)
    f = p["finetune"]
    f.update(seeds=[0], workers=scheduler)
    f["agora"].update(rounds=1, max_new_per_round=16, theta={"lr": [0.0001]})
    preset = f["presets"][f["preset"]]
    preset["bert"] = dict(preset["bert"], epochs=1)
    preset["bort"] = dict(preset["bort"], epochs=1)
    preset["search"] = {"bert": {"lr": [0.0003]}, "bort": {"lr": [0.0003]}}
    p["int8"]["calibration_examples"] = 16
    p["time"].update(min_repeats=1, max_repeats=1, budget_s=0.0)
    return p


class PeakMemory:
    """The machine's memory in use (MemTotal − MemAvailable), sampled every 0.2 s in a thread:
    system-wide, so the cluster's workers count with the stage's own processes."""

    def __init__(self):
        self.peak = self.used()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def used() -> int:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) * 1024

    def _run(self):
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.used())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def stages(project: Path) -> List[str]:
    """dvc.yaml's stages in its order (the graph's), a foreach stage expanded over `tasks`."""
    import yaml
    spec = yaml.safe_load((project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return [f"{name}@{TASK}" if "foreach" in body else name for name, body in spec.items()]


def rehearse(out: Path, workers: int, memory_limit: str = "auto") -> Dict[str, object]:
    import yaml
    from tqdm import tqdm
    out = out.resolve()
    baseline = PeakMemory.used()
    started = time.perf_counter()
    teacher = out / "teacher"
    if not (teacher / "model.safetensors").exists():
        write_teacher(teacher)
    record = {"teacher_seconds_to_write": round(time.perf_counter() - started, 1), "shape": list(BERT_LARGE),
              "space": PAPER_SPACE, "stages": []}
    project = out / "project"
    if not project.exists():
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(project)], check=True)
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    scheduler = str(out / "cluster" / "scheduler.json")
    (project / "params.yaml").write_text(yaml.safe_dump(overrides(params, teacher, scheduler), sort_keys=False),
                                         encoding="utf-8")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    dvc = str(Path(sys.executable).parent / "dvc")
    (out / "cluster").mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(out / "cluster", project)
    try:
        for k in range(workers):
            cluster.add_worker(f"worker-{k}", "--memory-limit", memory_limit)
        for stage in tqdm(stages(project), desc="rehearsal", unit="stage", file=sys.stderr):
            begin = time.perf_counter()
            with PeakMemory() as memory, open(out / f"{stage}.log", "wb") as log:
                rc = subprocess.run([dvc, "repro", "--single-item", stage], cwd=project, env=env, stdout=log,
                                    stderr=subprocess.STDOUT).returncode
            record["stages"].append({"stage": stage, "seconds": round(time.perf_counter() - begin, 1),
                                     "peak_gib": round((memory.peak - baseline) / 2 ** 30, 2), "rc": rc})
            (out / "rehearsal.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
            if rc:
                tail = (out / f"{stage}.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise BortError(f"rehearsal: stage {stage} failed (exit {rc}; {out / f'{stage}.log'}): "
                                f"{tail[0] if tail else 'no output'}")
    finally:
        cluster.stop()
    record["extract"] = json.loads((project / "metrics" / "extract.json").read_text(encoding="utf-8"))["chosen"]
    (out / "rehearsal.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="a folder for the teacher, the clone and the logs")
    parser.add_argument("--workers", type=int, default=2, help="one-thread Dask workers on 127.0.0.1")
    parser.add_argument("--worker-memory", default="auto", metavar="LIMIT",
                        help="each worker's `dask worker --memory-limit` (auto: the machine's memory x threads / "
                             "cores, half of it here; 0: none -- a BERT-large-shaped fine-tuning run took more than "
                             "11.2 GiB, so on 24 GiB: --workers 1 --worker-memory 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = parser.parse_args(argv)
    setup_logging()
    record = rehearse(args.out, args.workers, args.worker_memory)
    if args.json:
        print(json.dumps(record, indent=1))
    else:
        print("| stage | seconds | peak memory in use above the start (GiB) |\n|---|---|---|")
        for s in record["stages"]:
            print(f"| {s['stage']} | {s['seconds']} | {s['peak_gib']} |")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main))
