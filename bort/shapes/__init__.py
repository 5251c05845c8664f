"""Task shapes: one class per input structure of the 23 tasks, owning all that differs by shape.

A `bort.tasks.Task` entry is data (files, fields, labels, metrics) plus one of these shapes, and
no code outside this package branches on which shape, suite or task it holds (tables keyed by
suite or task -- the leaderboards' file layouts, the published scores -- are data). A shape turns an official
record into *instances* (plain dicts), an instance into the text rows a model encodes, and a
model's scores back into a prediction; it says what Agora may replace in an instance, what the
TF-IDF floor reads, and how a prediction is written for the leaderboard.

Instances, by shape:
  Single / Pair / Regression / WSC / WiC : {"id", "text_a", ["text_b"], "label", "fields"}
  Copa / Race (multiple choice)          : {"id", "text_a", "question", "choices", "label", "fields"}
  MultiRC (one binary instance per answer option): {"id", "group", "text_a", "text_b", "label", "fields"}
  ReCoRD (one instance per query)        : {"id", "text_a", "query", "candidates", "answers", "fields"}
"fields" keeps the official record's input fields; "label" is an index into the task's labels
(a float for regression; the option index for multiple choice), absent where the official file
has no label (GLUE and SuperGLUE test files).

Three heads cover the shapes (the companion code's classifier, alexa/bort finetune_bort.py, with
one output per label, one regression output, or one score per option):
  Classes -- a softmax over the task's labels;
  Score   -- one output, squared error, targets scaled into [0, 1] (STS-B's 0..5);
  Options -- one score per row (option or candidate entity), a softmax over an instance's rows.
The same head decides the floor's estimator (logistic regression, ridge, or a binary scorer of
options), so the floor and the fine-tuned models read each task the same way.
"""
from bort.shapes.base import LETTERS, Classes, Options, Row, Score, has_gold, label_index, require  # noqa: F401
from bort.shapes.choice import Copa, Race                                      # noqa: F401
from bort.shapes.passages import MultiRC, Record                               # noqa: F401
from bort.shapes.sentences import WSC, Pair, Regression, Single, WiC          # noqa: F401
