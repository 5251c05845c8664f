"""Where networks run: params.yaml `device`, one setting for every stage that runs one.

    device: cpu                   # the embedded default: one CPU context, outputs byte-identical
    device: auto                  # every GPU MXNet sees, else cpu
    device: gpu                   # every GPU (an error where there is none)
    device: [gpu(0), gpu(1)]      # these contexts; [cpu(0), cpu(1)] runs the multi-context path on CPU

The value is parsed once per stage into a list of `mx.Context`. Stages that only run a network
(inference) place it and its inputs on the first context; training splits each batch across all
of them, data-parallel as GluonNLP 0.10's scripts/bert do (one Trainer whose kvstore sums the
contexts' gradients). A batch here is a list of instances, each encoding to a different number
of rows, so `shards` is the instance-list counterpart of gluon.utils.split_and_load: each context
gets a contiguous shard of the instances (an instance's rows stay together: its loss groups
them), and each shard's loss is weighted by its share of the batch (`weights`), so the summed
gradient -- and the reported loss -- equal the one-context ones up to float rounding
(tests/test_device.py: 1e-5). Dropout draws its masks per context, so with dropout > 0 several
contexts match one context in distribution, not bit for bit.

Everything GPU-specific lives here: counting GPUs, and MXNet's automatic mixed precision
(mxnet.contrib.amp: float16 where AMP's op lists allow, dynamic loss scaling), which training
stages switch on for GPU contexts only (`mixed_precision`). CPU contexts always run fp32: MXNet
1.9's CPU AMP is bfloat16, which GluonNLP's fused self-attention ops refuse. Our choice, not the
papers': the companion code (alexa/bort) trains fp16 with Horovod on GPUs; that launcher is
pretrain.distributed, this is the in-process, one-machine path.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import List, Sequence, Union

from bort.errors import BortError
from bort.params import PARAMS_FILE, value

KEY = "device"
CHOICES = "auto, cpu, gpu, or a list of contexts like [cpu(0), cpu(1)] / [gpu(0), gpu(1)]"
_CONTEXT = re.compile(r"^(cpu|gpu)\((\d+)\)$")
_amp_on = False                   # mxnet.contrib.amp initialised in this process


def gpu_count() -> int:
    """GPUs MXNet sees; 0 on a CPU-only build (which may raise instead of answering)."""
    try:
        import mxnet as mx
        return mx.context.num_gpus()
    except Exception:
        return 0


def contexts(path: Path = PARAMS_FILE) -> list:
    """params.yaml `device` as a list of mx.Context (checked: one line naming the key if bad)."""
    return parse(value(KEY, Union[str, List[str]], path), path)


def parse(setting, path: Path = PARAMS_FILE) -> list:
    """`setting` (a params.yaml `device` value) as a non-empty list of mx.Context of one kind."""
    import mxnet as mx

    def bad(message: str) -> BortError:
        return BortError(f"{path}: key {KEY}: {message}")
    gpus = gpu_count()
    if setting == "auto":
        return [mx.gpu(k) for k in range(gpus)] or [mx.cpu(0)]
    if setting == "cpu":
        return [mx.cpu(0)]
    if setting == "gpu":
        if not gpus:
            raise bad("gpu asked for, but MXNet sees no GPU; expected cpu or auto on this machine")
        return [mx.gpu(k) for k in range(gpus)]
    names = [setting] if isinstance(setting, str) else list(setting)
    out = []
    for name in names:
        match = _CONTEXT.match(str(name).strip())
        if not match:
            raise bad(f"expected {CHOICES}, got {setting!r}")
        kind, index = match.group(1), int(match.group(2))
        if kind == "gpu" and index >= gpus:
            raise bad(f"{name} asked for, but MXNet sees {gpus} GPU(s)")
        out.append(mx.Context(kind, index))
    if not out:
        raise bad(f"expected {CHOICES}, got an empty list")
    if len(set(out)) != len(out):
        raise bad(f"a context is listed twice in {setting!r}")
    if len({c.device_type for c in out}) > 1:
        raise bad(f"expected contexts of one kind (all cpu or all gpu), got {setting!r}")
    return out


def label(ctxs: Sequence) -> str:
    """`cpu(0)` / `gpu(0),gpu(1)`: how outputs and logs name the device."""
    return ",".join(str(c) for c in ctxs)


def uses_gpu(ctxs: Sequence) -> bool:
    return any(c.device_type == "gpu" for c in ctxs)


def wants_gpu(path: Path = PARAMS_FILE) -> bool:
    """Whether params.yaml `device` puts networks on a GPU; a cpu setting is answered without
    importing MXNet (a process that only hands work to others need not pay for it)."""
    setting = value(KEY, Union[str, List[str]], path)
    names = [setting] if isinstance(setting, str) else list(setting)
    if all(str(n).strip() == "cpu" or str(n).strip().startswith("cpu(") for n in names):
        return False
    return uses_gpu(parse(setting, path))


def gpus_per_run(path: Path = PARAMS_FILE) -> int:
    """How many GPUs one run asks a Dask cluster for (its `GPU` resource, bort.cluster): 0 for a
    cpu setting, 1 for `gpu` (a run uses every GPU its worker sees: one worker per GPU, each with
    CUDA_VISIBLE_DEVICES set), the count for a list of gpu(k); `auto` as this process sees it.
    Read from the text, so a submitting node without a GPU can send runs to GPU workers."""
    setting = value(KEY, Union[str, List[str]], path)
    names = [str(n).strip() for n in ([setting] if isinstance(setting, str) else setting)]
    if names == ["gpu"]:
        return 1
    if names and len(set(names)) == len(names) and all(_CONTEXT.match(n) and n.startswith("gpu(") for n in names):
        return len(names)
    return int(wants_gpu(path))          # cpu settings (without MXNet), auto, or a bad one's one-line error


def is_default(ctxs: Sequence) -> bool:
    """One CPU context, cpu(0): where every model is built, so nothing needs moving."""
    import mxnet as mx
    return list(ctxs) == [mx.cpu(0)]


def place(block, ctxs: Sequence):
    """`block`'s parameters copied onto `ctxs` (one copy per context); a block already on cpu(0)
    alone is left as it is. Models are built and loaded on cpu(0) (bort.teacher), then placed."""
    if not is_default(ctxs):
        block.collect_params().reset_ctx(list(ctxs))
    return block


def where(block) -> list:
    """The contexts `block`'s parameters live on (as `place` left them), so that a function given
    only the model runs where it is: inference on the first, training on all of them."""
    return list(next(iter(block.collect_params().values())).list_ctx())


def shards(items: Sequence, count: int) -> List[list]:
    """`items` in `count` contiguous parts whose sizes differ by at most one (the first parts take
    the remainder); parts may be empty when there are fewer items than contexts."""
    base, extra = divmod(len(items), count)
    out, start = [], 0
    for k in range(count):
        size = base + (k < extra)
        out.append(list(items[start:start + size]))
        start += size
    return out


def split(batch: Sequence, ctxs: Sequence, shares=None) -> list:
    """One training step's work per context: (context, part of `batch`, weight of its loss).
    One context takes the whole batch, unweighted (None). Several take `shards`, weighted by
    `shares(parts)` (default `weights`: their share of the items); a context left without items
    (a last batch smaller than the contexts) takes the batch's first item at weight 0 -- it still
    backpropagates, so the gradients the kvstore sums are all of this step and every context
    applies the update."""
    if len(ctxs) == 1:
        return [(ctxs[0], batch, None)]
    parts = shards(batch, len(ctxs))
    return [(ctx, part if len(part) else batch[:1], share)
            for ctx, part, share in zip(ctxs, parts, (shares or weights)(parts))]


def weighted(loss, share):
    """A part's loss as its share of the batch loss (unchanged for one context)."""
    return loss if share is None else loss * share


def weights(parts: Sequence[Sequence]) -> List[float]:
    """Each part's share of the whole: the factor that makes per-part mean losses sum to the
    mean loss of the whole batch."""
    total = sum(len(p) for p in parts)
    return [len(p) / total for p in parts]


def trainer(params, optimizer, ctxs: Sequence):
    """A gluon.Trainer for parameters on `ctxs`. With several contexts the kvstore sums their
    gradients and every context applies the same update itself (update_on_kvstore=False: the way
    AMP's overflow check sees every step); with AMP on it gets its dynamic loss scaler."""
    import mxnet as mx
    kwargs = {"update_on_kvstore": False} if len(ctxs) > 1 else {}
    out = mx.gluon.Trainer(params, optimizer, **kwargs)
    if _amp_on and uses_gpu(ctxs):
        from mxnet.contrib import amp
        amp.init_trainer(out)
    return out


def mixed_precision(ctxs: Sequence) -> bool:
    """Switch on MXNet's automatic mixed precision (float16) when `ctxs` are GPUs; a no-op on
    CPU. Call it before building the networks that train (amp.init patches MXNet's operators for
    the whole process). Returns whether AMP is on."""
    global _amp_on
    if uses_gpu(ctxs) and not _amp_on:
        from mxnet.contrib import amp
        amp.init(target_dtype="float16")
        _amp_on = True
    return _amp_on and uses_gpu(ctxs)


def mixed_precision_on(ctxs: Sequence) -> bool:
    """Whether training on `ctxs` runs in mixed precision (after `mixed_precision`)."""
    return _amp_on and uses_gpu(ctxs)


def backward(losses: list, trainer) -> None:
    """Backpropagate one loss per context (scaled by AMP's loss scaler when it is on)."""
    import mxnet as mx
    if _amp_on and getattr(trainer, "_amp_loss_scaler", None) is not None:
        from mxnet.contrib import amp
        with mx.autograd.record(), amp.scale_loss(losses, trainer) as scaled:   # scaling is recorded too
            mx.autograd.backward(scaled)
    elif len(losses) == 1:
        losses[0].backward()
    else:
        mx.autograd.backward(losses)
