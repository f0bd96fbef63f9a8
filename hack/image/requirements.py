"""The part of requirements-lock.txt an image needs: the hashed entries of the runtime closure.

    python3 hack/image/requirements.py requirements-lock.txt pyproject.toml > runtime.txt
    python3 hack/image/requirements.py requirements-lock.txt pyproject.toml --roots hatchling

The lock holds every extra (dev tools too); the image must carry only `mizzen`'s dependencies and
the `proxy` extra (Envoy). The closure follows the lock's own `# via` annotations from those
roots, so versions and hashes stay exactly the lock's. Standard library only: it runs in the
image's build stage before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Each package's entry (its lines, hashes included) and the packages it is required by."""
    entries: dict[str, list[str]] = {}
    parents: dict[str, set[str]] = {}
    current: str | None = None
    in_via = False
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            match = _NAME.match(line)
            if match is None:
                raise ValueError(f"unreadable lock line: {line[:80]!r}")
            current = canonical(match.group(1))
            entries[current] = [line]
            parents[current] = set()
            in_via = False
        elif current is not None and line.strip().startswith("--hash="):
            entries[current].append(line)
        elif current is not None and line.strip().startswith("# via"):
            rest = line.strip()[len("# via") :].strip()
            in_via = not rest
            if rest:
                parents[current].add(rest)
        elif current is not None and in_via and line.strip().startswith("#   "):
            parents[current].add(line.strip()[4:].strip())
        else:
            in_via = False
    return {k: "\n".join(v) for k, v in entries.items()}, {
        k: {canonical(_NAME.match(p).group(1)) for p in ps if _NAME.match(p)}  # type: ignore[union-attr]
        for k, ps in parents.items()
    }


def runtime_roots(pyproject: Path, extras: list[str]) -> set[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project.get("optional-dependencies", {})[extra]
    roots = set()
    for requirement in requirements:
        match = _NAME.match(requirement)
        if match is None:
            raise ValueError(f"unreadable requirement {requirement!r}")
        roots.add(canonical(match.group(1)))
    return roots


def closure(roots: set[str], parents: dict[str, set[str]]) -> set[str]:
    """Every locked package reachable from the roots (a package is needed when one of the
    packages it is required by is)."""
    missing = roots - parents.keys()
    if missing:
        raise ValueError(f"not in the lock: {', '.join(sorted(missing))}")
    needed = set(roots)
    changed = True
    while changed:
        changed = False
        for package, by in parents.items():
            if package not in needed and by & needed:
                needed.add(package)
                changed = True
    return needed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("lock", type=Path)
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--extra", action="append", default=["proxy"], help="extras to include")
    parser.add_argument("--roots", nargs="*", help="these packages instead of mizzen's")
    args = parser.parse_args(argv)
    entries, parents = parse_lock(args.lock.read_text())
    if args.roots:
        roots = {canonical(r) for r in args.roots}
    else:
        roots = runtime_roots(args.pyproject, args.extra)
    for package in sorted(closure(roots, parents)):
        print(entries[package])
    return 0


if __name__ == "__main__":
    sys.exit(main())
