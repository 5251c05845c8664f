"""The official file formats of the three suites, read as records and written back (embedded data).

GLUE ships TSV: one header row (CoLA's train and dev files have none), fields by column name, no
CSV quoting (the files contain bare quotes), a few malformed QQP rows; MRPC's train and dev files
begin with a UTF-8 byte-order mark and end lines with CRLF (GLUE's download_glue_data.py copies
Microsoft's header line as it is), so every reader decodes `utf-8-sig` and strips CR. SuperGLUE ships JSON Lines,
one object per line. RACE ships a folder per split and level with one JSON passage per .txt file.
A format yields `(path, line, record)` -- the record a plain dict keyed by the official field
names -- and knows nothing of tasks beyond the columns and flags of the `Task` entry; the shape
(bort.shapes) turns each record into instances. Writing is the exact inverse, so the embedded
data is laid out as the loaders read the official downloads.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Iterator, Sequence, Tuple

from bort.errors import at

log = logging.getLogger(__name__)
Located = Tuple[Path, int, dict]


class Tsv:
    """GLUE's tab-separated files."""
    kind = "file"

    def default_id(self, count: int):
        return str(count)

    @staticmethod
    def _lines(path: Path):
        with open(path, encoding="utf-8-sig", newline="") as handle:
            for number, raw in enumerate(handle, start=1):
                raw = raw.rstrip("\r\n")
                if raw:
                    yield number, raw.split("\t")

    def records(self, task, path: Path, split: str) -> Iterator[Located]:
        rows = self._lines(path)
        if split in task.headerless:
            header = list(task.columns[split])
        else:
            try:
                _, header = next(rows)
            except StopIteration:
                raise at(path, 1, "empty file; expected a header row") from None
            renames = task.variant(split, path).renames
            header = [renames.get(column, column) for column in header]
        for needed in task.fields:
            if needed not in header:
                raise at(path, 1, f"header lacks column {needed!r}; expected columns "
                                  f"{list(task.fields)} (got {header})")
        if split != "test" and task.label_field not in header:
            raise at(path, 1, f"header lacks label column {task.label_field!r}")
        skipped = 0
        for number, values in rows:
            if len(values) != len(header):
                if task.skip_malformed:
                    skipped += 1
                    continue
                raise at(path, number, f"expected {len(header)} tab-separated fields, got {len(values)}")
            yield path, number, dict(zip(header, values))
        if skipped:
            log.warning("%s: skipped %d malformed row(s) (a known quirk of %s)", path, skipped, task.name)

    @staticmethod
    def write(path: Path, records: Sequence, columns: Sequence[str], header: bool = True) -> None:
        """Records (dicts keyed by column, or raw lists written as they are) in column order."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as handle:
            if header:
                handle.write("\t".join(columns) + "\n")
            for record in records:
                row = record if isinstance(record, list) else [record[c] for c in columns]
                handle.write("\t".join(str(v) for v in row) + "\n")

    def write_split(self, task, path: Path, split: str, records: Sequence) -> None:
        """The split's official columns; a test file gets the label column appended (the
        embedded data is labelled everywhere, so that scores are measured on data Agora never saw)."""
        columns = list(task.columns[split])
        if task.label_field not in columns:
            columns.append(task.label_field)
        self.write(path, records, columns, header=split not in task.headerless)


class Jsonl:
    """SuperGLUE's JSON Lines files."""
    kind = "file"

    def default_id(self, count: int):
        return count

    def records(self, task, path: Path, split: str) -> Iterator[Located]:
        with open(path, encoding="utf-8-sig") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except json.JSONDecodeError as err:
                    raise at(path, number, f"invalid JSON ({err.msg}); expected one object per line") from None
                if not isinstance(record, dict):
                    raise at(path, number, "expected a JSON object")
                yield path, number, record

    @staticmethod
    def write(path: Path, records: Sequence[dict]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, sort_keys=True) + "\n")

    def write_split(self, task, path: Path, split: str, records: Sequence[dict]) -> None:
        self.write(path, records)


class RaceFolder:
    """RACE: <split>/<level>/<n>.txt, each file one JSON passage on one line (errors name line 1,
    or the line the JSON parser stopped at)."""
    kind = "folder"

    def default_id(self, count: int):
        return count

    def records(self, task, folder: Path, split: str) -> Iterator[Located]:
        for path in sorted(folder.glob("*.txt"), key=lambda p: (len(p.stem), p.stem)):
            try:
                record = json.loads(path.read_text(encoding="utf-8-sig"))
            except json.JSONDecodeError as err:
                raise at(path, err.lineno, f"invalid JSON ({err.msg}); expected one RACE passage object") from None
            if not isinstance(record, dict):
                raise at(path, 1, "expected a JSON object (one RACE passage)")
            yield path, 1, record

    @staticmethod
    def write_split(task, folder: Path, split: str, records: Sequence[dict]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for k, record in enumerate(records):
            (folder / f"{k}.txt").write_text(json.dumps(record, sort_keys=True), encoding="utf-8")


FORMATS = {"tsv": Tsv(), "jsonl": Jsonl(), "race": RaceFolder()}
