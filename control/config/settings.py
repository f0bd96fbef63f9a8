"""Settings files (the mesh config, the injection settings): one YAML mapping each, read once
at the edge into frozen models. Every failure is a `SettingsFileError` whose one-line message
names the flag, the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from control.config.files import SETTINGS_MAX_BYTES, FileReadError, read_text
from control.config.loader import LoadError, load_single


class SettingsFileError(ValueError):
    """A settings file that cannot be used; the message is one line for the user."""


def read_mapping(path: Path, flag: str) -> dict[str, Any] | None:
    """A YAML file holding one mapping (or nothing)."""
    try:
        text = read_text(path, SETTINGS_MAX_BYTES)
    except FileReadError as error:
        raise SettingsFileError(f"{flag} {path}: {error}") from None
    try:
        data = load_single(text, str(path))
    except LoadError as error:
        raise SettingsFileError(
            f"{flag} {path}: invalid {error.syntax}: {error.problem}{error.where}"
        ) from None
    if data is not None and not isinstance(data, dict):
        raise SettingsFileError(f"{flag} {path}: must be a mapping of settings")
    return data


def describe(error: ValidationError) -> str:
    """The first problem of a pydantic error, as `field: message`."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "settings"
    return f"{where}: {first['msg']}"
