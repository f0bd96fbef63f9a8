"""The `file` config source: a directory of Kubernetes YAML/JSON, watched by polling.

Polling (every 100 ms by default) compares each file's inode, size and mtime, so in-place edits,
new and removed files and atomic replacement by rename (editors, `kubectl`-style tools, ConfigMap
volume updates) are all seen, on every filesystem, with no native dependency. Only changed files
are parsed again. Hidden entries (dot-names, such as a ConfigMap mount's `..data`) are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from control.model.build import BuildCache, build_state
from control.model.mesh_config import MeshConfig
from control.model.state import ConfigProblem, Document, MeshState
from control.sources.documents import SUFFIXES, parse_text

log = logging.getLogger(__name__)

Fingerprint = tuple[int, int, int, int]  # device, inode, size, mtime (ns)


@dataclass(frozen=True, slots=True)
class _Parsed:
    fingerprint: Fingerprint
    documents: tuple[Document, ...]
    problems: tuple[ConfigProblem, ...]


class FileSource:
    """Implements `ConfigSource` over a directory (searched recursively)."""

    def __init__(
        self, directory: Path, mesh: MeshConfig | None = None, poll_interval: float = 0.1
    ) -> None:
        self.directory = directory
        self.mesh = mesh or MeshConfig()
        self.poll_interval = poll_interval
        self._files: dict[Path, _Parsed] = {}
        self._state = MeshState(mesh=self.mesh)
        self._loaded = False
        self._build_cache = BuildCache()

    def current(self) -> MeshState:
        return self._state

    def load(self) -> MeshState:
        self.refresh()
        return self._state

    def refresh(self) -> bool:
        """Look at the directory once; True when the state changed. Unreadable directory: the
        last state stays (a vanished mount must not wipe the mesh's routes)."""
        try:
            seen = self._scan()
        except OSError as error:
            log.error("config directory %s unreadable, keeping the last state: %s",
                      self.directory, error)  # fmt: skip
            return False
        if self._loaded and seen == {p: f.fingerprint for p, f in self._files.items()}:
            return False
        files: dict[Path, _Parsed] = {}
        for path, fingerprint in sorted(seen.items()):
            known = self._files.get(path)
            files[path] = (
                known if known and known.fingerprint == fingerprint else _parse(path, fingerprint)
            )
        self._files = files
        self._loaded = True
        documents = [d for parsed in files.values() for d in parsed.documents]
        state = build_state(documents, self.mesh, self._build_cache)
        problems = tuple(p for parsed in files.values() for p in parsed.problems)
        state = _with_problems(state, problems)
        self._report(state)
        self._state = state
        return True

    async def run(self, on_change: Callable[[MeshState], None]) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                # Off the event loop: walking the tree and parsing and building a big mesh
                # must not stall the ADS streams. Only this task ever calls `refresh` then.
                changed = await asyncio.to_thread(self.refresh)
            except Exception:  # a bug here must not stop the watching for good
                log.exception("reading %s failed; keeping the last state", self.directory)
                continue
            if changed:
                on_change(self._state)

    def _scan(self) -> dict[Path, Fingerprint]:
        if not self.directory.is_dir():
            raise NotADirectoryError(f"{self.directory} is not a directory")
        found: dict[Path, Fingerprint] = {}
        for root, dirs, names in os.walk(self.directory):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in names:
                if name.startswith(".") or not name.endswith(SUFFIXES):
                    continue
                path = Path(root, name)
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue  # removed between the listing and the stat
                found[path] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        return found

    def _report(self, state: MeshState) -> None:
        before = set(self._state.problems)
        for problem in state.problems:
            if problem not in before:
                level = logging.WARNING if problem.severity == "error" else logging.INFO
                log.log(level, "config %s: %s", problem.severity, problem)
        log.info("config loaded from %s: %s", self.directory, state.summary())


def _parse(path: Path, fingerprint: Fingerprint) -> _Parsed:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problem = ConfigProblem(str(path), "", "", f"unreadable: {error}")
        return _Parsed(fingerprint, (), (problem,))
    documents, problems = parse_text(text, str(path))
    return _Parsed(fingerprint, tuple(documents), tuple(problems))


def _with_problems(state: MeshState, problems: tuple[ConfigProblem, ...]) -> MeshState:
    if not problems:
        return state
    return replace(state, problems=(*problems, *state.problems))
