"""Input errors that name the file, line, field and value, and the skip report."""
from __future__ import annotations

import csv
from dataclasses import dataclass, astuple, fields
from pathlib import Path

__all__ = ["InputError", "RowProblem", "write_skip_report"]


@dataclass(frozen=True)
class RowProblem:
    """One bad row: where it is (file, 1-based line; 0 = the file as a whole), which field, what value, why."""

    file: str
    line: int
    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        val = self.value if len(self.value) <= 80 else self.value[:77] + "..."
        return f"{where}: field {self.field!r} = {val!r}: {self.reason}"


class InputError(ValueError):
    """Bad input; `problems` holds every bad row found, the message shows the first few."""

    def __init__(self, problems: list[RowProblem]) -> None:
        self.problems = problems
        head = "\n  ".join(str(p) for p in problems[:5])
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        hint = "" if problems and problems[0].line == 0 else "\n(use --on-error skip to skip bad rows and write a report)"
        super().__init__(f"{len(problems)} input problem(s):\n  {head}{more}{hint}")


def write_skip_report(problems: list[RowProblem], path: str | Path) -> None:
    """CSV with one line per skipped row: file, line, field, value, reason."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([x.name for x in fields(RowProblem)])
        w.writerows(astuple(p) for p in problems)
