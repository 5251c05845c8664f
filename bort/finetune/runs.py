"""The runs of one task: BERT, Bort and Bort + Agora, once per seed, spread over worker processes.

A run is (model, seed). BERT's and Bort's runs start from their pretrained encoders; the Bort +
Agora run with seed s continues Bort's run s with points labelled by BERT's run s (bort.agora),
so it starts as soon as both have finished. The runs go to `workers` one-thread processes
(bort.workers): on a 2-core CPU that is 1.35x the throughput of one two-thread process, and the
results are the same for any number of workers, because every run seeds itself and always has
one thread. Inside a worker the runs of one model share the frozen part's cached states
(bort.finetune.frozen), filled in one fixed pass over the training rows before a run trains
(TaskModel.fill_cache), so a run reads the same states whichever run came first; the Agora runs
share the embedder and its memo (a text's embedding depends on the text alone). On GPU contexts (params.yaml `device`) the runs go one after
another in this process instead: bort.device decides, not this module.

Each run writes its own folder (weights, held-out predictions, submission) and returns its
record; a killed stage resumes every run from its last checkpoint (<checkpoints>/<model>/<task>/
seed-<s>/). Honest evaluation (bort.finetune.heldout): every reported score is measured on data
Agora never reads.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from bort.finetune import MODELS, FinetuneSection, Layout, evaluate

log = logging.getLogger(__name__)
AGORA = MODELS[2]
Run = Tuple[str, int]                 # (model, seed)


def plan(models: Sequence[str], seeds: Sequence[int]) -> List[Run]:
    """The runs, in the order they are started: BERT and Bort seed by seed, then Agora's."""
    first = [(m, s) for s in seeds for m in MODELS[:2] if m in models]
    return first + [(AGORA, s) for s in seeds if AGORA in models]


def needs(run: Run, runs: Sequence[Run]) -> List[Run]:
    """The runs of this stage that `run` waits for (Agora's: BERT's and Bort's with its seed,
    when this stage trains them; otherwise they are read from the models folder)."""
    which, seed = run
    return [r for r in ((m, seed) for m in MODELS[:2]) if which == AGORA and r in runs]


def run_all(task_name: str, paths: Dict[str, str], models: Sequence[str], seeds: Sequence[int], workers: int,
            in_process: bool, progress: Optional[Callable[[Run, dict], None]] = None) -> Dict[Run, dict]:
    """Every run of `models` x `seeds` on the task; returns each run's record."""
    runs = plan(models, seeds)
    done: Dict[Run, dict] = {}

    def finished(run, record):
        done[run] = record
        if progress is not None:
            progress(run, record)
    if in_process:
        start(task_name, paths)
        for run in runs:
            finished(run, execute(*run))
        return done
    from bort import workers as W
    with W.pool(workers, start, (task_name, paths)) as pool:
        waiting, running = list(runs), {}
        while waiting or running:
            for run in [r for r in waiting if all(d in done for d in needs(r, runs))]:
                running[pool.submit(execute, *run)] = run
                waiting.remove(run)
            ready, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(ready, key=lambda f: runs.index(running[f])):
                finished(running.pop(future), future.result())
    return done


_STATE: dict = {}                     # a worker's task, settings and shared caches


def start(task_name: str, paths: Dict[str, str]) -> None:
    """A worker's set-up: the task's splits, the settings, the contexts, empty caches."""
    from bort import device, tasks
    from bort.errors import setup_logging
    from bort.finetune.heldout import splits
    setup_logging()
    section = FinetuneSection.load("finetune")
    task = tasks.get_task(task_name)
    ctx = device.contexts()                                   # params.yaml `device` (bort.device)
    device.mixed_precision(ctx)
    _STATE.clear()
    _STATE.update(task=task, section=section, layout=Layout(**{k: paths[k] for k in Layout.FIELDS}),
                  pool_dir=Path(paths["pool"]), ctx=ctx, frozen={m: {} for m in MODELS[:2]},
                  data=splits(task, tasks.task_dir(paths["data"], task), section.heldout))


def execute(which: str, seed: int) -> dict:
    """One run in this worker; returns its record (bort.finetune.evaluate.write)."""
    started = time.perf_counter()
    record = (agora_run if which == AGORA else fine_tune)(which, seed)
    log.info("%s %s seed %d: %s (%.1f s)", which, _STATE["task"].name, seed, record["scores"],
             time.perf_counter() - started)
    return record


def fine_tune(which: str, seed: int) -> dict:
    """BERT's or Bort's run: a fresh head on the pretrained encoder, fine-tuned with `seed`."""
    from bort.finetune.model import new_model
    task, data, layout, ctx = (_STATE[k] for k in ("task", "data", "layout", "ctx"))
    cfg = _STATE["section"].model(which, len(data.train))
    model = new_model(task, layout.encoder(which), cfg, ctx, seed, _STATE["frozen"][which])
    train = evaluate.training_set(cfg, data)
    model.fill_cache([i for i in train if task.shape.trainable(i)])   # the same states for every seed
    losses = model.fit(train, checkpoint_dir=layout.checkpoint(which, task, seed))
    return evaluate.write(task, which, model, data, {"epoch_losses": losses}, layout)


def agora_run(which: str, seed: int) -> dict:
    """Bort + Agora's run: Bort's run `seed` continued with points near its mistakes on Agora's
    dev split, labelled by BERT's run `seed` (bort.agora)."""
    from bort import agora, checkpoint, metrics as M, teacher
    from bort.finetune.model import PARAMS, load_trained
    task, data, layout, ctx, section = (_STATE[k] for k in ("task", "data", "layout", "ctx", "section"))
    if "embed" not in _STATE:             # the embedder is the fixed source model: once per worker
        from bort import device
        encoder, vocab, arch = teacher.load_model(layout.encoder("bert"))
        device.place(encoder, ctx[:1])    # CPU: ONNX Runtime on the same graph (7x MXNet here)
        embed = (lambda texts: teacher.sentence_embeddings(encoder, vocab, texts)) if device.uses_gpu(ctx) else \
            teacher.onnx_embedder(encoder, vocab, arch)
        _STATE["embed"] = agora.Memo(embed)
        _STATE["agora_pool"] = agora.Pool.load(_STATE["pool_dir"])
    n = len(data.train)
    labeler = load_trained(task, layout.encoder("bert"), layout.model("bert", task, seed), section.model("bert", n),
                           ctx[:1], seed, _STATE["frozen"]["bert"])                # predicts only
    cfg = section.model(which, n)
    student = load_trained(task, layout.encoder("bort"), layout.model("bort", task, seed), cfg, ctx, seed,
                           _STATE["frozen"]["bort"])                               # Agora's step 1
    pool_dir = _STATE["pool_dir"]
    sources = {"labeler": checkpoint.sha256(layout.model("bert", task, seed) / PARAMS),
               "embedder": checkpoint.sha256(layout.encoder("bert") / "model.params"),
               "pool": {p.name: checkpoint.sha256(p) for p in sorted(pool_dir.iterdir()) if p.is_file()}}

    def score(instances, preds):
        return M.task_score(task, M.score(task, instances, preds))
    forbidden = {task.shape.inputs(i) for i in data.heldout}
    model, rounds = agora.run(task, student, evaluate.training_set(cfg, data), data.agora_dev, labeler,
                              _STATE["agora_pool"], _STATE["embed"], section.agora, forbidden, score, None,
                              layout.checkpoint(which, task, seed), sources)
    return evaluate.write(task, which, model, data, {"agora_rounds": rounds}, layout)


def summaries(task, section: FinetuneSection, data, records: Dict[Run, dict]) -> Dict[str, dict]:
    """Each model's metrics record over its seeds (bort.finetune.evaluate.summary)."""
    out = {}
    for which in MODELS:
        runs = [records[(which, s)] for s in section.seeds if (which, s) in records]
        if runs:
            more = {"agora": asdict(section.agora)} if which == AGORA else {}
            out[which] = evaluate.summary(task, which, section.model(which, len(data.train)), data, runs, **more)
    return out
