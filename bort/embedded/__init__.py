"""The embedded default's task data: all 23 tasks generated from a seed, in their official layouts.

No data set can be downloaded here, so `prepare` writes each task's files exactly as the official
downloads lay them out (glue_data/<Task>/*.tsv with the official columns, combined/<Task>/*.jsonl
with each task's schema, RACE/<split>/<level>/<n>.txt) -- through the same task entries and
formats (bort.tasks, bort.formats) the loaders read them with.

Each generator keeps its task's input structure and label space and draws its label from a rule
over a small shared world (bort.embedded.world: people, cities, jobs, objects with hypernyms,
sentiment words, causal pairs, polysemous words, Winograd schemas). The rules need the *relation*
between fields -- which object a hypothesis names, which sense a word takes, which slot a question
asks for -- so a bag-of-words floor does not solve them; `noise` flips a share of labels so no
model can be perfect. Test files carry labels (real GLUE test files do not) so that scores can be
measured on data Agora never sees.

  bort.embedded.world      the shared vocabulary and sentence makers, seeding, uniqueness
  bort.embedded.glue       CoLA ... WNLI, MNLI (matched, mismatched) and the AX diagnostic
  bort.embedded.superglue  BoolQ ... WSC, AX-b, AX-g
  bort.embedded.race       RACE-middle, RACE-high
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from bort.embedded import glue, race, superglue
from bort.embedded.world import Unique


def write_all(root, sizes: Dict[str, int], seed: int, noise: float) -> None:
    """Write all 23 tasks below `root` (glue_data/, combined/, RACE/); `sizes` per split."""
    root = Path(root)
    unique = Unique()
    glue.write(root, sizes, seed, noise, unique)
    superglue.write(root, sizes, seed, noise, unique)
    race.write(root, sizes, seed, noise, unique)
