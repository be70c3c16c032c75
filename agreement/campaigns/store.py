"""Campaign records on disk: one JSON object per line (JSON lines), appended as runs finish.

Each :meth:`RecordStore.append` writes one whole line and flushes it, so an interrupted
campaign keeps every finished record; a torn last line (the process died mid-write) is
ignored on reading and cut off before the next append. A damaged line elsewhere is an
error naming the file and the line. :func:`to_dataframe` turns records into a pandas
DataFrame (pandas is imported only there).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class RecordStore:
    """The records of one campaign in a JSON-lines file at ``path`` (created on first append)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._repaired = False

    def _lines(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        out = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if i == len(lines) - 1:  # the torn last line of an interrupted write
                    break
                raise ValueError(f"{self.path}:{i + 1}: not a JSON record ({exc.msg}); "
                                 "remove the line or start the campaign over") from None
        return out

    def records(self) -> list[dict[str, Any]]:
        """Every complete record, one per key (the last written wins), in file order."""
        by_key: dict[str, dict[str, Any]] = {}
        for rec in self._lines():
            by_key.pop(rec["key"], None)
            by_key[rec["key"]] = rec
        return list(by_key.values())

    def completed(self) -> set[str]:
        """The keys (``"<cell_id>/<seed>"``) of the records already written."""
        return {rec["key"] for rec in self._lines()}

    def _repair(self) -> None:
        """Cut a torn last line (no final newline) so that the next line starts clean."""
        self._repaired = True
        if not self.path.exists():
            return
        with self.path.open("rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line and flush it (JSON with sorted keys)."""
        if not self._repaired:
            self._repair()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True) + "\n"
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()

    def rewrite(self, records: Iterable[dict[str, Any]]) -> None:
        """Replace the file by ``records`` (in that order), atomically (a temporary file and
        :func:`os.replace`)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, sort_keys=True) + "\n")
        os.replace(tmp, self.path)
        self._repaired = True


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (:meth:`RecordStore.records`)."""
    return RecordStore(path).records()


def _flat(prefix: str, value: Any, row: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}", v, row)
    else:
        row[prefix] = value


SCALARS = ("key", "cell_id", "seed", "status", "input_diameter", "final_diameter_ratio",
           "averaging_error", "averaging_ratio", "views_differed", "messages", "bytes",
           "complete", "wall_time", "diameters", "violated")


def record_row(rec: dict[str, Any]) -> dict[str, Any]:
    """One flat row of a record: the scalars, every parameter as its own column (tables as
    ``rule_params.center``), ``verdict.<claim>.{status,ratio}``, ``check.<name>.{status,
    measured}``, ``faults.<kind>`` and ``error_type``."""
    row = {k: rec.get(k) for k in SCALARS}
    for k, v in (rec.get("params") or {}).items():
        if isinstance(v, dict):
            _flat(k, v, row)
        else:
            row[k] = v
    for name, v in (rec.get("verdicts") or {}).items():
        row[f"verdict.{name}.status"] = v.get("status")
        row[f"verdict.{name}.ratio"] = v.get("ratio")
    for name, v in (rec.get("checks") or {}).items():
        row[f"check.{name}.status"] = v.get("status")
        row[f"check.{name}.measured"] = v.get("measured")
    _flat("faults", rec.get("faults") or {}, row) if rec.get("faults") else None
    row["error_type"] = (rec.get("error") or {}).get("type")
    return row


def to_dataframe(records: Iterable[dict[str, Any]] | str | Path) -> Any:
    """A pandas DataFrame with one row per record (:func:`record_row`); ``records`` may be a
    list of records or the path of a JSON-lines file."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_dataframe needs pandas: pip install pandas") from None
    recs = load_records(records) if isinstance(records, (str, Path)) else list(records)
    return pd.DataFrame([record_row(r) for r in recs])


__all__ = ["RecordStore", "load_records", "record_row", "to_dataframe"]
