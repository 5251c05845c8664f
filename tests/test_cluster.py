"""The stages on a real Dask cluster (bort.cluster): a scheduler and one-thread workers started
with Dask's own CLI on 127.0.0.1, as a user would start them; a small extraction and one task's
fine-tuning give byte-identical outputs to the local pool's, also when a worker is killed
(SIGKILL) mid-run; an unreachable scheduler and a cluster without workers are one-line errors
within the timeout; runs that ask for a GPU go only to a worker offering one."""
import ast
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from bort import cluster, workers
from bort.localhost import LocalCluster, wait_for
from bort.errors import BortError
from conftest import ROOT

TASK = "RTE"


class Cluster(LocalCluster):
    """The localhost cluster (bort.localhost) with the tests folder on PYTHONPATH too (+ `where`)."""

    def __init__(self, folder: Path):
        super().__init__(folder, ROOT, pythonpath=[ROOT, ROOT / "tests"])


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A scheduler and two one-thread workers; the second also offers a GPU resource (no GPU is
    used: it lets the routing be tested on CPU contexts)."""
    found = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        found.add_worker("w1")
        found.add_worker("w2", "--resources", "GPU=1")
        yield found
    finally:
        found.stop()


# ---- cheap: the setting, the errors, the GPU routing -------------------------------------------

def test_a_workers_setting_is_a_count_an_address_or_a_scheduler_file():
    from types import SimpleNamespace
    from bort.params import ParamError, workers as check
    for good in (2, "tcp://127.0.0.1:8786", "tls://node7.cluster:8786", "cluster/scheduler.json"):
        check(SimpleNamespace(workers=good))
    for bad in (0, "127.0.0.1:8786", "http://host:8786", "tcp://host", "scheduler"):
        with pytest.raises(ParamError, match="expected a positive process count, a Dask scheduler address"):
            check(SimpleNamespace(workers=bad))


def test_a_bad_workers_setting_is_one_line_naming_the_key(tmp_path):
    from bort.finetune import FinetuneSection
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["finetune"]["workers"] = "localhost:8786"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(BortError, match=r"key finetune.workers: expected a positive process count.*'localhost:8786'"):
        FinetuneSection.load("finetune", tmp_path / "params.yaml")


def test_an_unreachable_scheduler_fails_fast_in_one_line(monkeypatch):
    monkeypatch.setenv(cluster.TIMEOUT_VARIABLE, "2")
    started = time.monotonic()
    with pytest.raises(BortError) as err:
        with workers.pool("tcp://127.0.0.1:9"):            # the discard port: nothing listens
            pass
    assert time.monotonic() - started < 15
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 2 s" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(BortError, match="no Dask scheduler file there"):
        workers.pool("nowhere/scheduler.json").__enter__()


def test_a_cluster_without_a_worker_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(cluster.TIMEOUT_VARIABLE, "2")
    empty = Cluster(tmp_path)
    try:
        started = time.monotonic()
        with pytest.raises(BortError) as err:
            with workers.pool(str(empty.file)):
                pass
        assert time.monotonic() - started < 15
        assert f"no worker joined the Dask cluster at {empty.address} within 2 s" in str(err.value)
        assert "\n" not in str(err.value)
    finally:
        empty.stop()


def where(_=None) -> str:
    from distributed import get_worker
    return get_worker().name


def threads() -> tuple:
    return tuple(os.environ.get(v) for v in workers.THREAD_VARIABLES)


def test_gpu_runs_go_only_to_a_worker_with_a_gpu_resource(dask_cluster, monkeypatch):
    """The routing only: the runs here are CPU runs; a real GPU worker is untested."""
    with workers.pool(str(dask_cluster.file), None, (), gpus=1) as pool:
        assert {pool.submit(where, k).result() for k in range(6)} == {"w2"}
    with workers.pool(dask_cluster.address, None, (), gpus=0) as pool:
        futures = [pool.submit(time.sleep, 0.5) for _ in range(4)]      # both workers busy at once
        assert [f.result() for f in futures] == [None] * 4
    monkeypatch.setenv(cluster.TIMEOUT_VARIABLE, "1")
    with pytest.raises(BortError, match=f"no worker joined the Dask cluster at {dask_cluster.address} within 1 s "
                                        "with GPU=2"):
        with workers.pool(dask_cluster.address, None, (), gpus=2):
            pass


def test_device_settings_ask_for_gpus_without_a_gpu(tmp_path):
    from bort import device
    for setting, gpus in (("cpu", 0), ("[cpu(0), cpu(1)]", 0), ("gpu", 1), ("[gpu(0), gpu(1)]", 2)):
        (tmp_path / "params.yaml").write_text(f"device: {setting}\n")
        assert device.gpus_per_run(tmp_path / "params.yaml") == gpus, setting


def test_a_worker_runs_in_the_stage_folder_with_one_thread(dask_cluster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with workers.pool(dask_cluster.address) as pool:
        assert pool.submit(os.getcwd).result() == str(tmp_path.resolve())
        assert pool.submit(threads).result() == ("1", "1", "1")
        assert pool.submit(cluster._malloc_trim).result() is None        # dask.yaml: glibc's own malloc


def extraction_state() -> list:
    from bort.extraction import bert
    return sorted(bert._WORKER)


def test_a_closed_pool_leaves_no_state_on_its_workers(dask_cluster, tmp_path, monkeypatch):
    """Workers outlive a stage: the extraction's teacher states must not stay in their memory."""
    from distributed import Client
    from bort.extraction import bert
    monkeypatch.chdir(tmp_path)
    with workers.pool(dask_cluster.address, bert._worker_start, ("data", "cfg"), 0, bert._worker_stop) as pool:
        assert all(f.result() == ["cfg", "data"] for f in [pool.submit(extraction_state) for _ in range(4)])
    with Client(dask_cluster.address, set_as_default=False) as client:
        wait_for(lambda: all(v == [] for v in client.run(extraction_state).values()), 10,
                 "the workers to release the pool's state")


# ---- the stages, cluster against local pool -----------------------------------------------------

@pytest.fixture(scope="module")
def project(tmp_path_factory, embedded_root):
    """A project folder: a tiny random teacher and student (MiniLM's vocabulary), Agora's pool,
    a corpus, the embedded tasks, and params.yaml with small extract and finetune sections."""
    import mxnet as mx
    from bort import agora, corpus, hf_checkpoint, tasks, teacher
    from bort.arch import Arch
    root = tmp_path_factory.mktemp("project")
    vocab = hf_checkpoint.load_wordpiece_vocab(teacher.minilm_dir() / "vocab.txt")
    for name, shape in (("teacher", (2, 4, 32, 64)), ("student", (2, 2, 32, 64))):
        arch = Arch(*shape, vocab_size=len(vocab), max_length=128)
        mx.random.seed(1)
        model = arch.build()
        model.initialize(mx.init.Normal(0.05))
        model(mx.nd.ones((1, 4)), mx.nd.zeros((1, 4)), mx.nd.array([4]))
        teacher.save_model(model, vocab, arch, root / "models" / name)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "tasks").symlink_to(embedded_root)
    docs = corpus.embedded_documents()
    (root / "data" / "corpus").mkdir()
    (root / "data" / "corpus" / "train.txt").write_text("\n".join(docs[:200]) + "\n")
    (root / "data" / "corpus" / "heldout.txt").write_text("\n".join(docs[-40:]) + "\n")
    task = tasks.TASKS[TASK]
    texts = sorted({i["text_a"] for i in tasks.load_split(task, tasks.task_dir(embedded_root, task), "train")})
    model, vocab, arch = teacher.load_model(root / "models" / "teacher")
    (root / "models" / "agora_pool").mkdir()
    agora.Pool(texts, np.asarray(teacher.sentence_embeddings(model, vocab, texts))).save(root / "models" / "agora_pool")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["device"] = "cpu"
    params["extract"].update(eps=1.0, other_eps=[], steps_per_unit_eps=2, learning_rates=[0.001, 0.003], seq_len=16,
                             space={"depth": [1, 2], "num_heads": [2, 4], "hidden_size": [16, 32],
                                    "intermediate_size": [32, 64]},
                             batch_size=8, chunk_len=16, train_chunks=32, fit_chunks=16, heldout_chunks=8)
    small = dict(epochs=3, max_len=32, max_len_passage=48, max_train=0)
    params["finetune"]["bert"].update(small, frozen_layers=1, frozen_runtime="onnxruntime")
    params["finetune"]["bort"].update(small)
    params["finetune"].update(seeds=[0, 1], preset="embedded")
    params["finetune"]["agora"].update(rounds=1, max_new_per_round=20)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def set_workers(root: Path, value):
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["extract"]["workers"] = params["finetune"]["workers"] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def stage(root: Path, script: str, *args):
    """Start a stage script as `dvc repro` would: in the project folder."""
    return subprocess.Popen([sys.executable, str(ROOT / "pipeline" / script), *args], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))


def finish(proc, seconds=600) -> str:
    _, err = proc.communicate(timeout=seconds)
    assert proc.returncode == 0, err[-3000:]
    return err


def extract(root: Path, out: str):
    return stage(root, "extract.py", "--teacher", "models/teacher", "--corpus", "data/corpus",
                 "--checkpoint", f"{out}/extract_ckpt", "--candidates", f"{out}/candidates.csv",
                 "--plot", f"{out}/pareto.png", "--metrics", f"{out}/extract.json")


def finetune(root: Path, out: str):
    return stage(root, "finetune.py", TASK, "--data", "data/tasks", "--teacher", "models/teacher",
                 "--student", "models/student", "--pool", "models/agora_pool", "--models", f"{out}/models",
                 "--metrics", f"{out}/metrics", "--checkpoints", f"{out}/checkpoints")


def files(folder: Path) -> dict:
    """Every file below `folder` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def same_tree(a: Path, b: Path):
    left, right = files(a), files(b)
    assert sorted(left) == sorted(right)
    assert [k for k in left if left[k] != right[k]] == []
    return len(left)


@pytest.fixture(scope="module")
def local(project):
    """The local pool's outputs (2 one-thread processes), the reference."""
    set_workers(project, 2)
    finish(extract(project, "local"))
    finish(finetune(project, "local"))
    return project / "local"


@pytest.mark.slow
def test_the_stages_on_a_cluster_write_what_the_local_pool_writes(project, local, dask_cluster):
    set_workers(project, str(dask_cluster.file))            # a scheduler file, as the README shows
    err = finish(extract(project, "cluster"))
    assert "Dask cluster" in err
    set_workers(project, dask_cluster.address)              # ... and an address
    finish(finetune(project, "cluster"))
    assert same_tree(local, project / "cluster") > 20       # candidates, front, ξ*; runs, metrics


def resumable(out: Path, key: str) -> bool:
    """Whether the fine-tuning run a Dask key names (`execute(model, seed, choice)-...`) has a
    checkpoint on disk: killing its worker now makes its rerun resume."""
    from bort.finetune import label
    if not key.startswith("execute("):
        return False
    which, seed, choice = ast.literal_eval(key[len("execute"):key.rindex("-")])
    base = out / "checkpoints" / which / TASK
    folder = base / "search" / label(choice) / "checkpoint" if which != "bort-agora" and seed == 0 else \
        base / f"seed-{seed}"
    return (folder / "state.json").exists()


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing(project, local, dask_cluster):
    """SIGKILL the worker process of a run that has a per-epoch checkpoint: the scheduler reruns
    it (on the other worker or the one the nanny restarts), it resumes, and every output is the
    local pool's, byte for byte."""
    from distributed import Client
    out = project / "killed"
    shutil.rmtree(out, ignore_errors=True)
    set_workers(project, dask_cluster.address)
    before = {name: len(dask_cluster.log(name)) for name in ("w1", "w2")}
    proc = finetune(project, "killed")
    victim = None
    with Client(dask_cluster.address, timeout=10, set_as_default=False) as client:
        deadline = time.monotonic() + 300
        while victim is None and proc.poll() is None and time.monotonic() < deadline:
            names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
            for address, keys in client.processing().items():
                if any(resumable(out, str(k)) for k in keys):
                    victim = names[address]                  # the worker process, not its nanny
                    os.kill(client.run(os.getpid, workers=[address])[address], signal.SIGKILL)
                    break
            time.sleep(0.05)
    assert victim, "no run with a checkpoint was seen running before the stage ended"
    finish(proc)
    assert same_tree(local / "models", out / "models") > 20 and same_tree(local / "metrics", out / "metrics") == 3
    logs = {name: dask_cluster.log(name)[before[name]:] for name in ("w1", "w2")}
    assert "killed by signal 9" in logs[victim].lower() or "restarting worker" in logs[victim].lower(), logs[victim][-2000:]
    assert "resuming from checkpoint" in logs["w1"] + logs["w2"]
    wait_for(lambda: dask_cluster.count() == 2, 60, "the nanny to restart the killed worker")
