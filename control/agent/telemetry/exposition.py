"""One Prometheus text exposition from three sources (pure): Istio's standard series (made
from Envoy's `envoy_istio_*`), Envoy's own metrics, and the app's.

The result stays valid whatever the app serves: each family appears once (an app family named
like one of ours is dropped), OpenMetrics' `# EOF` is removed, and lines that are neither
comments nor samples are skipped. Turning a raw label set into Istio's is cached per label
set, so a scrape of thousands of series costs a dictionary lookup per line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from control.agent.telemetry.standard import FAMILIES, family_of, istio_labels
from control.telemetry.facts import split_facts
from control.telemetry.peer import Peer

_LABEL_RE: Final = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
_NAME_RE: Final = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
# name, optional {labels}, value, optional timestamp
_SAMPLE_RE: Final = re.compile(
    r'[A-Za-z_:][A-Za-z0-9_:]*(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?[ \t]+(\S+)([ \t]+-?[0-9]+)?'
)
_UNESCAPE: Final = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
_CACHE_LIMIT: Final = 50_000  # label sets remembered (Envoy's own cap keeps far fewer)


def parse_labels(text: str) -> dict[str, str]:
    """`a="1",b="x\\"y"` -> {"a": "1", "b": 'x"y'}."""
    return {
        m.group(1): re.sub(r"\\[\\\"n]", lambda e: _UNESCAPE[e.group(0)], m.group(2))
        for m in _LABEL_RE.finditer(text)
    }


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_labels(labels: Mapping[str, str]) -> str:
    return ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: str  # the text between the braces
    value: str


def split_sample(line: str) -> Sample | None:
    """A sample line of Envoy's text format (`name{labels} value` or `name value`)."""
    brace = line.find("{")
    if brace < 0:
        name, _, value = line.partition(" ")
        return Sample(name, "", value) if value else None
    close = line.rfind("}")
    if close < brace:
        return None
    return Sample(line[:brace], line[brace + 1 : close], line[close + 1 :].strip())


class StandardSeries:
    """Renders Envoy's `envoy_istio_*` lines as Istio's series, for one proxy (`own`). A line's
    head (`name{labels}`) is rendered once and remembered: the next scrapes pay a lookup."""

    def __init__(self, own: Peer) -> None:
        self.own = own
        self._heads: dict[str, tuple[str, str] | None] = {}

    def head(self, head: str) -> tuple[str, str] | None:
        """(family, rendered head) of `envoy_istio_<...>{<labels>}`, None if not standard."""
        if head in self._heads:
            return self._heads[head]
        rendered = self._render(head)
        if len(self._heads) >= _CACHE_LIMIT:
            self._heads.clear()
        self._heads[head] = rendered
        return rendered

    def _render(self, head: str) -> tuple[str, str] | None:
        sample = split_sample(head + " 0")
        found = family_of(sample.name) if sample else None
        if sample is None or found is None:
            return None
        family, suffix = found
        raw, le = sample.labels, ""
        if suffix == "_bucket":
            cut = raw.rfind('le="')
            if cut >= 0:
                raw, le = raw[:cut].rstrip(","), raw[cut:]
        facts = split_facts(parse_labels(raw))
        labels = render_labels(istio_labels(facts, self.own, FAMILIES[family][1]))
        if le:
            labels = f"{labels},{le}" if labels else le
        return family, f"{family}{suffix}{{{labels}}}"


@dataclass
class Merged:
    lines: list[str]
    standard_series: int = 0  # standard series rendered (label sets x histogram lines)
    app_families_dropped: int = 0

    def text(self) -> str:
        return "\n".join(self.lines) + "\n" if self.lines else ""


def merge(
    envoy_text: str,
    series: StandardSeries | None,
    app_text: str = "",
    extra: Iterable[str] = (),
) -> Merged:
    """Istio's series first (None: leave `envoy_istio_*` out), then Envoy's own, the agent's
    `extra` lines, then the app's."""
    standard: list[str] = []  # TYPE lines and rendered heads, in order
    values: dict[str, str] = {}  # rendered head -> value
    own: list[str] = []
    families: set[str] = set()
    typed: set[str] = set()
    for line in envoy_text.splitlines():
        if line.startswith("envoy_istio_"):
            close = line.rfind("}")
            found = series.head(line[: close + 1]) if series is not None and close > 0 else None
            if found is None:
                continue
            family, head = found
            if family not in typed:
                typed.add(family)
                standard.append(f"# TYPE {family} {FAMILIES[family][0]}")
            value = line[close + 1 :].strip()
            if head in values:  # raw series that are one Istio series (say, two junk peers)
                values[head] = _sum(values[head], value)
            else:
                values[head] = value
                standard.append(head)
        elif line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3:
                if parts[2].startswith("envoy_istio_"):
                    continue  # typed under Istio's name above
                families.add(parts[2])
            own.append(line)
        elif line:
            own.append(line)
    families |= typed
    extra_lines = list(extra)
    for line in extra_lines:
        if line.startswith("# TYPE "):
            families.add(line.split(" ")[2])
    app_lines, dropped = _app_lines(app_text, families)
    lines = [item if item[0] == "#" else f"{item} {values[item]}" for item in standard]
    return Merged([*lines, *own, *extra_lines, *app_lines], len(values), dropped)


def _sum(a: str, b: str) -> str:
    """Two sample values added, written as Envoy writes them (integers without a point)."""
    try:
        total = float(a) + float(b)
    except ValueError:
        return a
    return str(int(total)) if total.is_integer() and abs(total) < 2**53 else repr(total)


def _sample_family(name: str, types: Mapping[str, str]) -> str:
    for suffix in ("_bucket", "_sum", "_count", "_total", "_created", "_info"):
        base = name[: -len(suffix)] if name.endswith(suffix) else ""
        if base and base in types:
            return base
    return name


def _app_lines(text: str, taken: set[str]) -> tuple[list[str], int]:
    """The app's lines minus families we already serve and anything not a metric line."""
    if not text:
        return [], 0
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                types[parts[2]] = parts[3]
    kept: list[str] = []
    dropped: set[str] = set()
    for line in _metric_lines(text):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            name = parts[2] if len(parts) >= 3 else ""
        else:
            match = _NAME_RE.match(line)
            name = _sample_family(match.group(0), types) if match else ""
        if name in taken:
            dropped.add(name)
            continue
        kept.append(line)
    return kept, len(dropped)


def _metric_lines(text: str) -> Iterator[str]:
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped == "# EOF":
            continue
        if stripped.startswith("#"):
            if stripped.startswith(("# TYPE ", "# HELP ")):
                yield stripped
            continue
        sample = _SAMPLE_RE.fullmatch(stripped)
        if sample and _is_number(sample.group(2)):
            yield stripped


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
