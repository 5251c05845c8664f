"""The runs of one task: BERT, Bort and Bort + Agora, once per seed, spread over worker processes,
with each model's settings chosen per task on Agora's dev split.

A run is (model, seed, choice). The settings search (params.yaml `finetune.presets.<preset>.search`)
comes first: every point of BERT's and of Bort's grid is fine-tuned with the first seed of
`finetune.seeds` -- for the first `finetune.search_rung` of its epochs, its learning-rate schedule
the full run's -- and scored, the task score, on Agora's dev split, which the held-out split never
overlaps (bort.finetune.heldout). The best point (the first listed on a tie) is each model's choice
for the task; its candidate continues from the rung's checkpoint to the end, and that *is* the
model's run of the first seed (bit for bit the run an uninterrupted fit gives). The other seeds
train with the choice. With two points and a rung of 0.5 this is successive halving (Jamieson &
Talwalkar, arXiv 1502.07943) with η = 2: the search costs (len(grid) - 1) x rung runs per model
and task. Why the first seed only, and why a rung: the search has to fit the time budget of the
embedded default (README, "Fine-tuning settings chosen on dev"); our reading of the paper's
per-task search (arXiv 2010.10499, fine-tuning section; the companion README lists a grid of seeds
x lr x weight decay x warm-up x batch). A model whose grid has one point (or none) skips the search.

BERT's and Bort's runs start from their pretrained encoders; the Bort + Agora run with seed s
continues Bort's run s with points labelled by BERT's run s (bort.agora), so it starts as soon
as both have finished. The runs go to `workers` one-thread processes (bort.workers): on a 2-core
CPU that is 1.35x the throughput of one two-thread process, and the results are the same for any
number of workers, because every run seeds itself and always has one thread. Inside a worker the
runs of one model share the frozen part's cached states (bort.finetune.frozen), filled in one
fixed pass over the training rows before a run trains (TaskModel.fill_cache), so a run reads the
same states whichever run came first; the Agora runs share the embedder and its memo (a text's
embedding depends on the text alone). On GPU contexts (params.yaml `device`) the runs go one after
another in this process instead: bort.device decides, not this module. With `workers` naming a
Dask cluster the runs go to its workers (bort.cluster: the same submit and wait, a GPU per run
on GPU contexts), which read and write these folders on a shared filesystem.

Each run writes its own folder (weights and settings, held-out predictions, submission) and
returns its record; a search candidate keeps its checkpoints and its rung's scores in the
checkpoints folder (<checkpoints>/<model>/<task>/search/<choice>/). A killed stage resumes every
run from its last checkpoint. Honest evaluation (bort.finetune.heldout): every reported score is measured on data
Agora -- and the search -- never read.
"""
from __future__ import annotations

import json
import logging
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from bort import metrics as M
from bort.errors import BortError
from bort.finetune import MODELS, Choice, FinetuneSection, Layout, base_model, evaluate, label
from bort.finetune.frozen import SharedStates
from bort.io import write_json

log = logging.getLogger(__name__)
AGORA = MODELS[2]
Run = Tuple[str, int, Choice]         # (model, seed, the grid point it trains with)
SEARCH = "search"                     # a candidate's folder below <checkpoints>/<model>/<task>/
RUNG = "rung.json"                    # ... holding its scores at the rung


class Plan:
    """What a task's stage runs, in what order, and what each run waits for."""

    def __init__(self, models: Sequence[str], seeds: Sequence[int], grids: Dict[str, List[Choice]]):
        self.models, self.seeds, self.grids = [m for m in MODELS if m in models], list(seeds), grids
        self.first = self.seeds[0]

    def searched(self, which: str) -> bool:
        return which != AGORA and len(self.grids[which]) > 1

    def candidates(self) -> List[Run]:
        """The search's runs: every grid point of a searched model, with the first seed."""
        return [(m, self.first, c) for m in self.models if self.searched(m) for c in self.grids[m]]

    def total(self) -> int:
        """How many runs are trained (for the progress bar): the candidates to their rung, then
        every model's seeds (the chosen candidate's continuation is the first seed's run)."""
        return len(self.candidates()) + len(self.models) * len(self.seeds)

    def ready(self, chosen: Dict[str, Choice], done: set) -> List[Run]:
        """The full runs whose settings are known and whose inputs exist, in plan order: BERT's
        and Bort's once their model's choice is made (the first seed's continues the chosen
        candidate), Agora's run s once BERT's and Bort's runs s exist (when this stage trains them;
        otherwise they are read from the models folder)."""
        out = []
        for s in self.seeds:
            for m in self.models:
                if m == AGORA:
                    if all((b, s) in done for b in MODELS[:2] if b in self.models):
                        out.append((m, s, ()))
                elif m in chosen:
                    out.append((m, s, chosen[m]))
        return out


def choose(task, which: str, grid: Sequence[Choice], records: Dict[Choice, dict]) -> Tuple[Choice, dict]:
    """The grid point with the best task score on Agora's dev split (the first listed on a tie),
    and the search's record: every candidate's dev scores and training losses."""
    def dev_score(choice):
        record = records[choice]
        if "agora_dev_scores" not in record:
            raise BortError(f"{task.name}: the settings search needs Agora's dev split, and it is empty")
        return M.task_score(task, record["agora_dev_scores"])
    best = max(grid, key=dev_score)              # max keeps the first of equal scores
    at = records[best]
    rung = f", after {at['epochs']} of {at['of']} epochs" if "epochs" in at else ""
    return best, {"scored_on": f"Agora's dev split (task score); first seed{rung}", "seed": at["seed"],
                  "chosen": dict(best), "candidates": [
                      {"setting": dict(c), "agora_dev_task_score": dev_score(c),
                       "agora_dev_scores": records[c]["agora_dev_scores"],
                       "epoch_losses": records[c].get("epoch_losses")} for c in grid]}


def run_all(task_name: str, paths: Dict[str, str], models: Sequence[str], seeds: Sequence[int], workers,
            in_process: bool, grids: Dict[str, List[Choice]],
            progress: Optional[Callable[[Run, dict], None]] = None) -> Tuple[Dict[Tuple[str, int], dict], dict]:
    """Every run of `models` x `seeds` on the task, each model's settings chosen from its grid
    first; returns each (model, seed)'s record and each searched model's search record."""
    from bort import tasks
    task = tasks.get_task(task_name)
    plan = Plan(models, seeds, grids)
    done: Dict[Tuple[str, int], dict] = {}
    found: Dict[str, Dict[Choice, dict]] = {m: {} for m in plan.models}
    chosen: Dict[str, Choice] = {m: grids[m][0] for m in plan.models if m != AGORA and not plan.searched(m)}
    searches: Dict[str, dict] = {}

    def finished(run: Run, is_candidate: bool, record: dict) -> None:
        which, seed, choice = run
        if progress is not None:
            progress(run, record)
        if not is_candidate:
            done[(which, seed)] = record
            return
        found[which][choice] = record
        if len(found[which]) == len(grids[which]):
            chosen[which], searches[which] = choose(task, which, grids[which], found[which])

    todo = [(run, True) for run in plan.candidates()]
    with (_Inline(start, (task_name, paths)) if in_process else _pool(workers, task_name, paths)) as pool:
        running: Dict[Future, Tuple[Run, bool]] = {}
        submitted: set = set()

        def submit_ready() -> None:
            for job in todo + [(run, False) for run in plan.ready(chosen, set(done))]:
                if job not in submitted:
                    submitted.add(job)
                    running[pool.submit(candidate if job[1] else execute, *job[0])] = job
        submit_ready()
        while running:
            ready, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(ready, key=lambda f: (MODELS.index(running[f][0][0]), running[f][0][1:],
                                                       running[f][1])):
                finished(*running.pop(future), future.result())
            submit_ready()
    return done, searches


def _pool(workers, task_name: str, paths: Dict[str, str]):
    """Local one-thread processes, or a Dask cluster's workers (each run then asks for the GPUs
    params.yaml `device` names: bort.cluster)."""
    from bort import device, workers as W
    return W.pool(workers, start, (task_name, paths), device.gpus_per_run() if W.is_cluster(workers) else 0, stop)


class _Inline:
    """The runs one after another in this process (GPU contexts), behind the pool's interface."""

    def __init__(self, initializer, initargs):
        initializer(*initargs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future


def candidate_dir(layout: Layout, task, which: str, choice: Choice) -> Path:
    """Where a search candidate keeps its per-epoch checkpoints ("checkpoint": the chosen one's
    full run continues from them) and its score at the rung (RUNG)."""
    return layout.checkpoint(which, task) / SEARCH / label(choice)


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
                  pool_dir=Path(paths["pool"]), ctx=ctx, frozen={},
                  data=splits(task, tasks.task_dir(paths["data"], task), section.heldout))


def stop() -> None:
    """A cluster worker's release when the task's pool closes (bort.cluster): splits, caches, the
    embedder and Agora's pool."""
    _STATE.clear()


def execute(which: str, seed: int, choice: Choice) -> dict:
    """One run in this worker; returns its record (bort.finetune.evaluate.write)."""
    started = time.perf_counter()
    record = agora_run(seed) if which == AGORA else fine_tune(which, seed, choice)
    log.info("%s %s seed %d %s: %s (%.1f s)", which, _STATE["task"].name, seed, label(choice), record["scores"],
             time.perf_counter() - started)            # logged only: metrics files hold no times
    return record


def frozen_cache(which: str, cfg) -> SharedStates:
    """The frozen part's states shared by a worker's runs of one model with one frozen part."""
    key = (which, cfg.freeze_embeddings, cfg.frozen_layers, cfg.frozen_runtime, cfg.max_len, cfg.max_len_passage)
    return _STATE["frozen"].setdefault(key, SharedStates())


def prime(model, cfg, data) -> None:
    """Fill the frozen part's shared states a run reads, in two fixed passes before it trains or
    predicts: the training rows of a run with settings `cfg`, then the rows every run is scored
    on (held-out, test, Agora's dev split). A row's states then come from the same pass, in the
    same batch, whichever run in the worker came first -- and no run computes the scoring rows'
    states again (they were 3-4 s of a 22 s BERT run, recomputed by every run)."""
    model.fill_cache([i for i in evaluate.training_set(cfg, data) if model.shape.trainable(i)])
    model.fill_cache(list(data.heldout) + list(data.test) + list(data.agora_dev))


def candidate(which: str, seed: int, choice: Choice) -> dict:
    """A search candidate in this worker: trained to its rung and scored on Agora's dev split."""
    started = time.perf_counter()
    record = fine_tune(which, seed, choice, rung=True)
    log.info("%s %s seed %d %s after %d of %d epochs: Agora dev %s (%.1f s)", which, _STATE["task"].name, seed,
             label(choice), record["epochs"], record["of"], record["agora_dev_scores"], time.perf_counter() - started)
    return record


def fine_tune(which: str, seed: int, choice: Choice, rung: bool = False) -> dict:
    """BERT's or Bort's run: a fresh head on the pretrained encoder, fine-tuned with `seed` and the
    settings at grid point `choice`. A searched model's first seed trains in its candidate folder:
    with `rung`, only to the search's rung (`FinetuneSection.rung`), returning the scores there
    (kept in RUNG, so a resumed stage reads them back whatever the run did next); without, the
    chosen candidate's full run, which resumes from the rung's checkpoint -- the very run an
    uninterrupted fit would have been (bort.finetune.trainer)."""
    from bort.finetune.model import new_model
    task, data, layout, ctx, section = (_STATE[k] for k in ("task", "data", "layout", "ctx", "section"))
    cfg = section.model(which, len(data.train), choice)
    model = new_model(task, layout.encoder(which), cfg, ctx, seed, frozen_cache(which, cfg))
    train = evaluate.training_set(cfg, data)
    prime(model, cfg, data)                                            # the same states for every seed
    searched = len(section.grid(which)) > 1 and seed == section.seeds[0]
    folder = candidate_dir(layout, task, which, choice) if searched else None
    checkpoint_dir = folder / "checkpoint" if searched else layout.checkpoint(which, task, seed)
    if not rung:
        losses = model.fit(train, checkpoint_dir=checkpoint_dir)
        return evaluate.write(task, which, model, data, {"epoch_losses": losses}, layout)
    config = model.fingerprint([i for i in train if task.shape.trainable(i)], epochs=cfg.epochs)
    if not (folder / RUNG).exists() or json.loads((folder / RUNG).read_text(encoding="utf-8"))["config"] != config:
        epochs = section.rung(cfg.epochs)
        losses = model.fit(train, checkpoint_dir=checkpoint_dir, until=epochs)
        write_json(folder / RUNG, {"config": config, "record": {
            "seed": seed, "epochs": epochs, "of": cfg.epochs, "epoch_losses": losses,
            **evaluate.dev_scores(task, model, data)}})
    return json.loads((folder / RUNG).read_text(encoding="utf-8"))["record"]      # rounded, as metrics are


def agora_run(seed: int) -> dict:
    """Bort + Agora's run: Bort's run `seed` continued with points near its mistakes on Agora's
    dev split, labelled by BERT's run `seed` (bort.agora), with the settings Bort's run trained with
    (its folder says which: the search's choice)."""
    from bort import agora, checkpoint, metrics as M, teacher
    from bort.finetune.model import PARAMS, load_trained, trained_config
    which = AGORA
    task, data, layout, ctx, section = (_STATE[k] for k in ("task", "data", "layout", "ctx", "section"))
    if "embed" not in _STATE:             # the embedder is the fixed source model: once per worker
        from bort import device
        encoder, vocab, arch = teacher.load_model(layout.encoder("bert"))
        device.place(encoder, ctx[:1])    # CPU: ONNX Runtime on the same graph (7x MXNet here)
        embed = (lambda texts: teacher.sentence_embeddings(encoder, vocab, texts)) if device.uses_gpu(ctx) else \
            teacher.onnx_embedder(encoder, vocab, arch)
        _STATE["embed"] = agora.Memo(embed)
        _STATE["agora_pool"] = agora.Pool.load(_STATE["pool_dir"])
    bert_cfg, cfg = (trained_config(layout.model(m, task, seed)) for m in MODELS[:2])
    labeler = load_trained(task, layout.encoder("bert"), layout.model("bert", task, seed), ctx[:1], seed,
                           frozen_cache("bert", bert_cfg))                            # predicts only
    student = load_trained(task, layout.encoder("bort"), layout.model("bort", task, seed), ctx, seed,
                           frozen_cache("bort", cfg))                                 # Agora's step 1
    prime(labeler, bert_cfg, data)
    prime(student, cfg, data)
    pool_dir = _STATE["pool_dir"]
    sources = {"labeler": checkpoint.sha256(layout.model("bert", task, seed) / PARAMS),
               "embedder": checkpoint.sha256(layout.encoder("bert") / "model.params"),
               "pool": {p.name: checkpoint.sha256(p) for p in sorted(pool_dir.iterdir()) if p.is_file()}}

    def score(instances, preds):
        return M.task_score(task, M.score(task, instances, preds))
    forbidden = {task.shape.inputs(i) for i in data.heldout}
    model, rounds = agora.run(task, student, evaluate.training_set(cfg, data), data.agora_dev, labeler,
                              _STATE["agora_pool"], _STATE["embed"], section.agora, forbidden, score, None,
                              layout.checkpoint(which, task, seed), sources, seed)
    return evaluate.write(task, which, model, data, {"agora_rounds": rounds}, layout)


def summaries(task, section: FinetuneSection, data, records: Dict[Tuple[str, int], dict],
              searches: Dict[str, dict]) -> Dict[str, dict]:
    """Each model's metrics record over its seeds (bort.finetune.evaluate.summary), with the
    settings it trained with (the search's choice, `settings_search`)."""
    out = {}
    for which in MODELS:
        runs = [records[(which, s)] for s in section.seeds if (which, s) in records]
        if runs:
            more = {"agora": asdict(section.agora)} if which == AGORA else {}
            search = searches.get(base_model(which))
            if search:
                more["settings_search"] = search if which != AGORA else {"chosen": search["chosen"],
                                                                          "continues": "bort"}
            choice = tuple(sorted(search["chosen"].items())) if search else ()
            out[which] = evaluate.summary(task, which, section.model(which, len(data.train), choice), data, runs,
                                          **more)
    return out
