"""A fast block-style YAML writer for the JSON-like documents `mizzen inject` prints.

PyYAML's dumper builds a node per value in Python and resolves every scalar twice; on a 1 MB
manifest (7 MB once injected) that is most of `mizzen inject`'s time. Manifests are JSON-like
(dicts, lists, strings, numbers, booleans, null), so this writes them directly: a string is plain
when it is simple text that PyYAML's resolver reads back as a string, single-quoted when it is
printable, double-quoted with escapes otherwise. Anything else (a YAML timestamp, binary, a
complex key) sends the whole document to PyYAML. The tests load the output back and compare.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any, Final

import yaml
from yaml.nodes import ScalarNode

from control.config.loader import plain_is_string

_STR_TAG: Final = "tag:yaml.org,2002:str"
_RESOLVER: Final = yaml.resolver.Resolver()
# Plain scalars: no indicator first, no ': ' or ' #', nothing that needs quoting in block context.
_PLAIN: Final = re.compile(r"^(?:[A-Za-z0-9_./~(]|-(?=[A-Za-z0-9-]))[A-Za-z0-9_./=+:,@~*()' -]*$")
# What a single-quoted scalar on one line may hold (printable, no line breaks, no BOM).
_SINGLE_QUOTABLE: Final = re.compile(
    "^[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*$"
)
# YAML 1.1 booleans that PyYAML reads as strings but kubectl's YAML library (go-yaml v2) does not.
_GO_YAML_BOOLEANS: Final = frozenset({"y", "Y", "n", "N"})
_ESCAPES: Final = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _UnsupportedError(Exception):
    """A value that is not JSON-like: the document goes to PyYAML."""


def _double_quoted(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0x20 <= code <= 0x7E:
            out.append(char)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


@lru_cache(maxsize=8192)
def scalar(text: str) -> str:
    """`text` as a YAML scalar that loads back as the same string."""
    if (
        _PLAIN.fullmatch(text)
        and not text.endswith((":", " "))
        and not text.startswith("---")
        and text not in _GO_YAML_BOOLEANS
        and ": " not in text
        and _RESOLVER.resolve(ScalarNode, text, (True, False)) == _STR_TAG  # type: ignore[no-untyped-call]
        and plain_is_string(text)  # YAML 1.2 (and go-yaml) read `1e9` as a number
    ):
        return text
    if _SINGLE_QUOTABLE.fullmatch(text):
        return "'" + text.replace("'", "''") + "'"
    return _double_quoted(text)


def _literal(text: str, indent: int) -> str | None:
    """A multi-line string as a literal block (`|`, `|-`), readable as it was written; None
    when it cannot be one exactly (leading space, carriage returns, several final newlines)."""
    body = text[:-1] if text.endswith("\n") else text
    if body.endswith("\n") or not body or body[0] in " \n" or "\r" in text:
        return None
    lines = body.split("\n")
    if not all(_SINGLE_QUOTABLE.fullmatch(line) for line in lines):
        return None
    pad = " " * indent
    indicator = "|" if text.endswith("\n") else "|-"
    return indicator + "".join(f"\n{pad}{line}" if line else "\n" for line in lines)


def _value_text(value: object, indent: int) -> str:
    """A leaf value written after `key: ` or `- ` at `indent` (a literal block when multi-line)."""
    if type(value) is str and "\n" in value:
        literal = _literal(value, indent + 2)
        if literal is not None:
            return literal
    return _leaf(value)


def _float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    # PyYAML's resolver needs a dot in a float ("1e+20" would read back as a string).
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    return text


def _leaf(value: object) -> str:
    if isinstance(value, str):
        return scalar(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    if type(value) is float:
        return _float(value)
    raise _UnsupportedError


def _key(key: object) -> str:
    text = _leaf(key)
    if len(text) > 1024:
        raise _UnsupportedError  # PyYAML writes long keys as explicit "? " keys
    return text


def _mapping(data: dict[Any, Any], indent: int, out: list[str], first_inline: bool) -> None:
    pad = " " * indent
    prefix = "" if first_inline else pad
    for key, value in data.items():
        head = f"{prefix}{_key(key)}:"
        prefix = pad
        kind = type(value)
        if kind is dict and value:
            out.append(head + "\n")
            _mapping(value, indent + 2, out, False)
        elif kind is list and value:
            out.append(head + "\n")
            _sequence(value, indent, out)
        elif kind is dict:
            out.append(head + " {}\n")
        elif kind is list:
            out.append(head + " []\n")
        else:
            out.append(f"{head} {_value_text(value, indent)}\n")


def _sequence(data: list[Any], indent: int, out: list[str]) -> None:
    pad = " " * indent
    for value in data:
        kind = type(value)
        if kind is dict and value:
            out.append(pad + "- ")
            _mapping(value, indent + 2, out, True)
        elif kind is list and value:
            out.append(pad + "-\n")
            _sequence(value, indent + 2, out)
        elif kind is dict:
            out.append(pad + "- {}\n")
        elif kind is list:
            out.append(pad + "- []\n")
        else:
            out.append(f"{pad}- {_value_text(value, indent)}\n")


def dump_document(document: object) -> str:
    """One document as block-style YAML."""
    out: list[str] = []
    try:
        if type(document) is dict and document:
            _mapping(document, 0, out, False)
        elif type(document) is list and document:
            _sequence(document, 0, out)
        else:
            raise _UnsupportedError
    except _UnsupportedError:
        text: str = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
        return text
    return "".join(out)


def dump_all(documents: list[Any]) -> str:
    """Documents separated by `---`, as `yaml.dump_all` separates them."""
    return "---\n".join(dump_document(document) for document in documents)
