"""Error types shared across modules.

Every error a user can cause by committing a file carries that file, the line
and the field, so the message can be acted on without reading code.
"""

from __future__ import annotations

from dataclasses import dataclass


class FleetError(Exception):
    """Base class for errors fleet reports to users."""


@dataclass(frozen=True)
class SpecProblem:
    """One problem found in a file of the fleet repo."""

    file: str
    field: str
    message: str
    line: int | None = None
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class SpecError(FleetError):
    """A revision of the fleet repo is invalid; it lists every problem found."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
