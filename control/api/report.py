"""The result of validating one mesh object: errors that refuse it, warnings that do not.

Every consumer (the webhook's `/validate`, `mizzen validate`, the config sources) speaks this
shape, so a message reads the same at `kubectl apply` and on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason to refuse an object, anchored at a field path such as `spec.http[0].route`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """Errors refuse the object; warnings are suspicious-but-valid things worth telling the user."""

    errors: tuple[FieldError, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        if self.ok:
            return "ok"
        return "; ".join(str(error) for error in self.errors)


def single_error(path: str, message: str) -> ValidationReport:
    """A report refusing the object for one reason (the common case for envelope problems)."""
    return ValidationReport(errors=(FieldError(path, message),))
