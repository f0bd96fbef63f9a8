"""Text of a YAML or JSON file -> documents. A syntax error becomes a problem, never a crash;
the documents before it in a YAML stream are kept."""

from __future__ import annotations

import json
from typing import Any

import yaml

from control.plane.model.state import ConfigProblem, Document

try:  # libyaml when present: the same results, much faster on big directories
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

SUFFIXES = (".yaml", ".yml", ".json")


class TooManyDocumentsError(ValueError):
    """A YAML stream with more documents than the caller allows (parsing stopped there)."""


def parse_text(
    text: str, origin: str, max_documents: int | None = None
) -> tuple[list[Document], list[ConfigProblem]]:
    """Split and parse one file; `origin` (its path) prefixes each document's origin. Raises
    TooManyDocumentsError as soon as the stream holds more than `max_documents`."""
    if origin.endswith(".json"):
        try:
            return [Document(origin, json.loads(text))], []
        except json.JSONDecodeError as error:
            message = f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
            return [], [ConfigProblem(origin, "", "", message)]
        except RecursionError:  # json has no depth limit of its own
            return [], [ConfigProblem(origin, "", "", "invalid JSON: nested too deeply")]
    documents: list[Document] = []
    try:
        for index, obj in enumerate(yaml.load_all(text, Loader=_Loader)):
            if max_documents is not None and index >= max_documents:
                raise TooManyDocumentsError(f"more than {max_documents} documents")
            documents.append(Document(f"{origin}#{index}", obj))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        origin_of_error = f"{origin}#{len(documents)}"
        message = f"invalid YAML{where}: {problem}; the rest of the file is skipped"
        return documents, [ConfigProblem(origin_of_error, "", "", message)]
    return documents, []
