"""The one reader of YAML and JSON input: config files, `mizzen validate`, `mizzen inject`, the
settings files, the Kubernetes API's answers. One set of rules, so no two commands read the same
text differently:

- **libyaml, always.** PyYAML's pure-Python parser reads some documents differently (`[fe80::]`
  is a one-key mapping to it, an error to libyaml) and is ten times slower; there is no silent
  fallback to it: without libyaml nothing is read (`LibyamlMissingError`, said once by the CLI).
- **YAML 1.2 (core schema), as Kubernetes reads it.** Only `true`/`false` are booleans
  (`yes`, `no`, `on`, `off`, `y`, `n` are strings); `0777` is 777 and `0o777` is octal; `1_000`,
  `1:20` and dates are strings; `1e3` is a float; `~`, `null` and nothing are null; merge keys
  (`<<`) are honoured. libyaml itself still refuses a plain scalar ending in `:` before a flow
  indicator (`[2001:db8::]`): quote such IPv6 literals.
- **JSON** when the name ends in `.json` (its errors are JSON's); text that starts with `{` or
  `[` is tried as JSON first (JSON is YAML 1.2, so only the speed differs).
- **One guard** against hostile shapes: a document nested deeper than the parsers can go is an
  error, and a YAML stream with anchors is walked as it would be written out, so an alias bomb
  (a few lines that expand to billions of values) is refused after `MAX_VALUES` values or
  `MAX_DEPTH` levels, in milliseconds.
- **Lists** (`kind: List`, or any `...List` with `items`) unroll by one rule: `list_items`.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from dataclasses import dataclass
from typing import Any, Final, cast

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import BaseResolver

SUFFIXES: Final = (".yaml", ".yml", ".json")
# A manifest of 1 MB holds some 100,000 values; nothing real nests 500 levels (a self-referencing
# alias does). Counted over a whole stream, as written out, only when the text has anchors.
MAX_VALUES: Final = 2_000_000
MAX_DEPTH: Final = 500


class LibyamlMissingError(RuntimeError):
    """PyYAML was built without libyaml: mizzen does not read YAML with anything else."""


class TooManyDocumentsError(ValueError):
    """A YAML stream with more documents than the caller allows (parsing stopped there)."""


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed document and where it came from (`file.yaml#2`: the third of its file)."""

    origin: str
    obj: Any


class LoadError(ValueError):
    """Text that is not valid YAML or JSON (or too deep, or too big once its aliases are written
    out). `index` is the document it stopped at; documents before it were read."""

    def __init__(
        self,
        origin: str,
        index: int,
        syntax: str,
        problem: str,
        line: int | None = None,
        column: int | None = None,
        *,
        hostile: bool = False,
    ) -> None:
        self.origin, self.index, self.syntax, self.problem = origin, index, syntax, problem
        self.line, self.column = line, column
        self.hostile = hostile  # refused by the guard (too deep, too many values), not syntax
        super().__init__(self.message)

    @property
    def document_origin(self) -> str:
        """The document it stopped at: `file.yaml#2` (a JSON file is one document)."""
        return self.origin if self.syntax == "JSON" else f"{self.origin}#{self.index}"

    @property
    def where(self) -> str:
        """` (line L, column C)`, or nothing when the position is not known."""
        return f" (line {self.line}, column {self.column})" if self.line is not None else ""

    def describe(self) -> str:
        """`invalid YAML: <problem> (line L, column C)`, or what the guard refused."""
        if self.hostile:
            return self.problem
        return f"invalid {self.syntax}: {self.problem}{self.where}"

    @property
    def message(self) -> str:
        """As the file source and `/debug/configz` say it."""
        if self.syntax == "JSON":
            at = f" at line {self.line} column {self.column}" if self.line is not None else ""
            return f"invalid JSON{at}: {self.problem}"
        at = f" at line {self.line} column {self.column}" if self.line is not None else ""
        return f"invalid YAML{at}: {self.problem}; the rest of the file is skipped"


# --- YAML 1.2 ---------------------------------------------------------------------------------


class _Yaml12Resolver(BaseResolver):
    """The implicit types of YAML 1.2's core schema (plus merge keys, as go-yaml reads them)."""


_CORE_TYPES: Final = (
    ("bool", r"true|True|TRUE|false|False|FALSE", "tTfF"),
    ("int", r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", "-+0123456789"),
    (
        "float",
        r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        "-+.0123456789",
    ),
    ("null", r"~|null|Null|NULL|", ["~", "n", "N", ""]),
    ("merge", r"<<", "<"),
)
for _name, _pattern, _first in _CORE_TYPES:
    _Yaml12Resolver.add_implicit_resolver(
        f"tag:yaml.org,2002:{_name}", re.compile(f"^(?:{_pattern})$"), list(_first)
    )


_STR_TAG: Final = "tag:yaml.org,2002:str"
_RESOLVER: Final = _Yaml12Resolver()


def plain_is_string(text: str) -> bool:
    """Whether `text`, written as a plain (unquoted) scalar, reads back as a string here."""
    return bool(_RESOLVER.resolve(ScalarNode, text, (True, False)) == _STR_TAG)  # type: ignore[no-untyped-call]


# Mapping keys up to this long are interned (`name`, `port`, `protocol`: in every document).
_INTERNED_CHARS: Final = 64


class _Yaml12Constructor(SafeConstructor):
    """SafeConstructor with YAML 1.2's integers (`0777` is decimal) and floats (`1e3`), and
    mapping keys interned: the file source keeps every parsed document, where the same keys
    recur thousands of times and libyaml makes a new string for each (4.5 of the ~74 MB a
    mesh of 1,000 Services takes once loaded; interning every scalar saved 6 MB but made
    parsing 1.8x slower, keys alone cost nothing measurable)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        mapping: dict[Any, Any] = super().construct_mapping(node, deep)
        return {
            sys.intern(k) if type(k) is str and len(k) <= _INTERNED_CHARS else k: v
            for k, v in mapping.items()
        }


def _construct_int(constructor: Any, node: ScalarNode) -> int:
    text = str(constructor.construct_scalar(node))
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if digits.startswith("0o"):
        return sign * int(digits[2:], 8)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    return sign * int(digits)


def _construct_float(constructor: Any, node: ScalarNode) -> float:
    text = str(constructor.construct_scalar(node)).lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    return float("nan") if text == ".nan" else float(text)


cast(Any, _Yaml12Constructor).add_constructor("tag:yaml.org,2002:int", _construct_int)
cast(Any, _Yaml12Constructor).add_constructor("tag:yaml.org,2002:float", _construct_float)


def _loader_class() -> type[Any]:
    try:
        from yaml.cyaml import CParser as parser  # type: ignore[attr-defined]  # noqa: N813
    except ImportError:
        raise LibyamlMissingError(
            "PyYAML is installed without libyaml; reinstall it from the lock "
            "(hack/setup.sh), mizzen reads YAML with libyaml only"
        ) from None

    def __init__(self: Any, stream: str) -> None:  # noqa: N807 - the class's constructor
        parser.__init__(self, stream)
        SafeConstructor.__init__(self)
        BaseResolver.__init__(self)

    loader: type[Any] = type(
        "Loader", (parser, _Yaml12Constructor, _Yaml12Resolver), {"__init__": __init__}
    )
    return loader


@functools.cache
def yaml_loader() -> type[Any]:
    """The loader class: libyaml's parser, YAML 1.2 types (made once, on first use)."""
    return _loader_class()


# --- reading ----------------------------------------------------------------------------------


def parse_text(
    text: str, origin: str, max_documents: int | None = None
) -> tuple[list[Document], list[LoadError]]:
    """Every document of one file (or stdin, or an annotation), `origin#<index>` each, and the
    error that stopped the reading, if any: the documents before it are kept. Raises
    TooManyDocumentsError as soon as there are more than `max_documents`."""
    if origin.endswith(".json"):
        try:
            return [Document(origin, parse_json(text, origin))], []
        except LoadError as error:
            return [], [error]
    if text.lstrip()[:1] in ("{", "["):
        try:
            return [Document(f"{origin}#0", json.loads(text))], []
        except (ValueError, RecursionError):
            pass  # not JSON after all: YAML says what is wrong
    documents: list[Document] = []
    try:
        loader = yaml_loader()(text)
        try:
            while loader.check_data():
                if max_documents is not None and len(documents) >= max_documents:
                    raise TooManyDocumentsError(f"more than {max_documents} documents")
                documents.append(Document(f"{origin}#{len(documents)}", loader.get_data()))
        finally:
            loader.dispose()
        if "&" in text:  # aliases are possible: count what they expand to
            _check_expansion(documents)
    except yaml.YAMLError as error:
        return documents, [_yaml_error(error, origin, len(documents))]
    except RecursionError:
        return documents, [
            LoadError(origin, len(documents), "YAML", "nested too deeply", hostile=True)
        ]
    except _ExpansionError as error:
        return documents[: error.index], [
            LoadError(origin, error.index, "YAML", str(error), hostile=True)
        ]
    return documents, []


def load_single(text: str, origin: str) -> Any:
    """The one document of a settings file (None when it is empty). Raises LoadError."""
    documents, errors = parse_text(text, origin)
    if errors:
        raise errors[0]
    return documents[0].obj if documents else None


def parse_json(text: str | bytes, origin: str = "") -> Any:
    """JSON, with the nesting guard (`json` has no depth limit of its own). Raises LoadError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise LoadError(origin, 0, "JSON", error.msg, error.lineno, error.colno) from None
    except ValueError as error:  # bytes that are not UTF-8, integers of too many digits
        raise LoadError(origin, 0, "JSON", str(error)) from None
    except RecursionError:
        raise LoadError(origin, 0, "JSON", "nested too deeply", hostile=True) from None


def list_items(obj: object) -> list[Any] | None:
    """The items of a List (`kind: List`, or `ServiceList` and the like, with `items`); None
    for anything else. The one rule every reader unrolls Lists by."""
    if not isinstance(obj, dict):
        return None
    kind, items = obj.get("kind"), obj.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        return items
    return None


def _yaml_error(error: yaml.YAMLError, origin: str, index: int) -> LoadError:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or getattr(error, "context", None)
    if not problem:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
    return LoadError(origin, index, "YAML", str(problem), line, column)


class _ExpansionError(Exception):
    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


def _check_expansion(documents: list[Document]) -> None:
    """Refuses documents too big or too deep once their aliases are written out."""
    visits = 0
    for index, document in enumerate(documents):
        stack: list[tuple[object, int]] = [(document.obj, 0)]
        while stack:
            node, depth = stack.pop()
            visits += 1
            if visits > MAX_VALUES:
                raise _ExpansionError(f"more than {MAX_VALUES} values (YAML aliases?)", index)
            if depth > MAX_DEPTH:
                raise _ExpansionError("nested too deeply", index)
            if isinstance(node, dict):
                stack += [(value, depth + 1) for value in node.values()]
            elif isinstance(node, list):
                stack += [(value, depth + 1) for value in node]
