"""Settings files read by several commands, parsed once here at the edge into frozen models.
Every failure is a `SettingsFileError` whose message names the flag, the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from injector import InjectionConfig


class SettingsFileError(ValueError):
    """A settings file that cannot be used; the message is one line for the user."""


def read_mapping(path: Path, flag: str) -> dict[str, Any] | None:
    """A YAML file holding one mapping (or nothing)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    except OSError as error:
        raise SettingsFileError(f"{flag} {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise SettingsFileError(f"{flag} {path}: not UTF-8 text") from None
    except yaml.YAMLError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SettingsFileError(f"{flag} {path}: invalid YAML: {first}") from None
    if data is not None and not isinstance(data, dict):
        raise SettingsFileError(f"{flag} {path}: must be a mapping of settings")
    return data


def describe(error: ValidationError) -> str:
    """The first problem of a pydantic error, as `field: message`."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "settings"
    return f"{where}: {first['msg']}"


def load_injection_config(path: Path | None, flag: str = "--config") -> InjectionConfig:
    """The injection settings (a flat mapping of camelCase keys); the defaults without a file."""
    if path is None:
        return InjectionConfig()
    data = read_mapping(path, flag)
    try:
        return InjectionConfig.from_mapping(data)
    except ValidationError as error:
        raise SettingsFileError(f"{flag} {path}: {describe(error)}") from None
