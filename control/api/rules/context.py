"""Where rules put what they find: errors at field paths, and warnings."""

from __future__ import annotations

from dataclasses import dataclass, field

from control.api.report import FieldError


@dataclass(slots=True)
class Findings:
    """Collected by the rules of one object; turned into a ValidationReport at the end."""

    errors: list[FieldError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}" if path else message)
