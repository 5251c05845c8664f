"""The pretrain stage's communicator: one process, or Horovod ranks (pretrain.distributed).

Both expose the same `rank`, `size`, `trainer(params, lr, ctxs)` and `broadcast(params)`, so the
training loop in bort.pretraining is one code path whatever the launcher (it shards each batch by
rank and checkpoints on rank 0). Under Horovod rank 0's initial weights are broadcast to the others
and `hvd.DistributedTrainer` averages gradients; in one process nothing is broadcast and one
Trainer spans the contexts. Horovod is an optional install, so it is imported only when asked for.
"""
from __future__ import annotations

from bort import device
from bort.errors import BortError


class Horovod:
    """The Horovod path, imported only when asked for (an optional install)."""

    def __init__(self):
        try:
            import horovod.mxnet as hvd
        except ImportError:
            raise BortError("params.yaml: pretrain.distributed is 'horovod' but horovod.mxnet is not "
                            "installed; expected `HOROVOD_WITH_MXNET=1 pip install horovod` and a "
                            "launch with `horovodrun -np N python pipeline/pretrain.py`") from None
        hvd.init()
        self.hvd, self.rank, self.size = hvd, hvd.rank(), hvd.size()

    def trainer(self, params, lr, ctxs):
        return self.hvd.DistributedTrainer(params, "adam", {"learning_rate": lr})    # one context per rank

    def broadcast(self, params):
        self.hvd.broadcast_parameters(params, root_rank=0)


class Single:
    """One process (rank 0 of 1): the Trainer sums its contexts' gradients in process (bort.device)."""

    rank, size = 0, 1

    def trainer(self, params, lr, ctxs):
        import mxnet as mx
        return device.trainer(params, mx.optimizer.Adam(learning_rate=lr), ctxs)

    def broadcast(self, params):
        pass
