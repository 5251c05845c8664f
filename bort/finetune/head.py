"""The classifier on the encoder: the companion code's head, on the [CLS] state or the mean state.

alexa/bort finetune_bort.py (after GluonNLP 0.10 scripts/bert): dropout -> dense+tanh -> dropout
-> dense, on the encoder's [CLS] state. With `pooling: mean` it reads the mean of the real tokens'
states instead -- the representation the embedded MiniLM checkpoint was trained to produce (its
[CLS] state was never trained alone). The number of outputs is the task shape's (bort.shapes).
"""
from __future__ import annotations


def build_classifier(encoder_model, hidden: int, outputs: int, dropout: float, pooling: str = "cls"):
    """A HybridBlock (ids, types, lengths) -> scores: `encoder_model` (a GluonNLP BERTModel)
    with a freshly initialised head of `outputs` outputs."""
    import mxnet as mx
    from mxnet.gluon import nn

    class Classifier(mx.gluon.HybridBlock):
        def __init__(self):
            super().__init__()
            with self.name_scope():
                self.encoder = encoder_model
                self.head = nn.HybridSequential()
                self.head.add(nn.Dropout(dropout), nn.Dense(hidden, activation="tanh", in_units=hidden, flatten=False),
                              nn.Dropout(dropout), nn.Dense(outputs, in_units=hidden, flatten=False))

        def hybrid_forward(self, F, ids, types, lengths):
            return self.pool_head(F, self.encoder(ids, types, lengths)[0], lengths)

        def pool_head(self, F, seq, lengths):
            """Scores from the encoder's (batch, length, hidden) states (padding already zeroed)."""
            if pooling == "mean":
                summed = F.sum(F.SequenceMask(seq, sequence_length=lengths, use_sequence_length=True, axis=1), axis=1)
                return self.head(F.broadcast_div(summed, lengths.reshape((-1, 1))))
            return self.head(F.slice_axis(seq, axis=1, begin=0, end=1).reshape((0, -1)))

    net = Classifier()
    net.head.initialize(mx.init.Xavier())
    return net
