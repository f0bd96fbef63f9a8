"""The `file` config source: a directory of Kubernetes YAML/JSON, watched.

A look at the tree compares each file's inode, size and mtime, so in-place edits, new and
removed files and atomic replacement by rename (editors, `kubectl`-style tools, ConfigMap volume
updates) are all seen, on every filesystem, with no native dependency. Only changed files are
parsed again. Hidden entries (dot-names, such as a ConfigMap mount's `..data`) are skipped. When
to look, inotify says (`dir_watch`: 100 ms after a change, by default), with a look every 2 s for
what it cannot see; without inotify, or while something is to be retried, the source looks every
100 ms.

A failure to read is never taken for a deletion; the mesh keeps its last good config:

- **Listing.** A directory that cannot be listed (out of file descriptors, permissions, I/O)
  keeps every file known under it as it was; the failure is logged, counted
  (`mizzen_config_source_errors_total{reason="listing"}`) and listed at `/debug/configz` until a
  listing succeeds. A file is deleted only when a listing that succeeded no longer shows it, so an
  empty directory after a full one is applied only when it was verifiably listed as empty.
- **Last known good, per object.** Each file remembers the last good version of every object it
  defined (keyed by kind, namespace and name). A reading of the file is *clean* when it was read
  whole, parsed without a syntax error and every object in it is valid; a clean reading is the
  file's new truth (an object no longer in it is deleted). A reading that is not clean changes
  only what it can show to be good: its valid objects apply, and every object it used to define
  keeps its last good version — whether it is now invalid, or absent because the file could not be
  read, does not parse, or was cut short (a non-atomic save, a full disk). A file that holds no
  object at all where it held some is taken for a save caught half-way (truncated, not yet
  written) and keeps them all: deleting every object of a file takes deleting the file. The
  problem and the objects kept are reported at `/debug/configz` and counted by reason
  (`unreadable`, `syntax`, `invalid`, `empty`). A file that cannot be read at all keeps all of its
  last good objects; a read that failed for a transient reason (an I/O error) is retried at the
  next poll. A save cut exactly between two documents reads as a clean edit and is applied: no
  reader can tell it from one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from control.config import files
from control.config.files import FileReadError
from control.config.loader import SUFFIXES, TooManyDocumentsError, parse_text
from control.config.mesh_config import MeshConfig
from control.logsafe import untrusted
from control.plane.model.build import BuildCache, ObjectId, build_state, judge
from control.plane.model.state import ConfigProblem, Document, MeshState
from control.plane.sources.base import log_new_problems
from control.plane.sources.dir_watch import DirectoryWatch

log = logging.getLogger(__name__)

_SIZE_FLAG = "--config-max-file-bytes"
Fingerprint = tuple[int, int, int, int, int]  # device, inode, size, mtime (ns), mode
ErrorCounter = Callable[[str], None]  # called with a reason, once per failure seen


@dataclass(frozen=True, slots=True)
class FileLimits:
    """What one config file may hold; a file beyond them is refused whole (its last good
    objects are kept). Big enough for any hand-written or generated mesh file, small enough that
    no file can hold the watcher up for long (a 1.3M-document file took 77 s to parse)."""

    max_bytes: int = 8 * 1024 * 1024
    max_documents: int = 10_000  # YAML documents and List items, together


@dataclass(frozen=True, slots=True)
class _Reading:
    """What one file contributes, as of its latest reading."""

    fingerprint: Fingerprint
    documents: tuple[Document, ...]  # handed to `build_state` (valid, invalid and kept ones)
    good: Mapping[ObjectId, Document] = field(default_factory=dict)  # last good, per object
    problems: tuple[ConfigProblem, ...] = ()
    retry: bool = False  # a transient failure: read again at the next poll


class FileSource:
    """Implements `ConfigSource` over a directory (searched recursively)."""

    def __init__(
        self,
        directory: Path,
        mesh: MeshConfig | None = None,
        poll_interval: float = 0.1,
        *,
        rescan_interval: float = 2.0,
        limits: FileLimits | None = None,
        count_error: ErrorCounter | None = None,
    ) -> None:
        self.directory = directory
        self.limits = limits or FileLimits()
        self.mesh = mesh or MeshConfig()
        self.poll_interval = poll_interval
        self.rescan_interval = rescan_interval
        self._count_error = count_error or (lambda reason: None)
        self._files: dict[Path, _Reading] = {}
        self._state = MeshState(mesh=self.mesh)
        self._loaded = False
        self._build_cache = BuildCache()
        self._listing_problems: tuple[ConfigProblem, ...] = ()
        # The Path of each file seen, reused by every poll: lookups of the same object skip
        # pathlib's slow comparisons (10 polls a second: this was most of a poll's cost).
        self._paths: dict[str, Path] = {}
        self._directories: list[Path] = []  # as last listed: what `run` watches

    def current(self) -> MeshState:
        return self._state

    def problems(self) -> tuple[ConfigProblem, ...]:
        """The source's own trouble (directories it cannot list), not any document's."""
        return self._listing_problems

    def load(self) -> MeshState:
        self.refresh()
        return self._state

    def refresh(self) -> bool:
        """Look at the directory once; True when the state changed. What cannot be listed
        stays as it was (a vanished mount or a lack of file descriptors must not wipe the
        mesh's routes)."""
        listing = _list(self.directory, self._paths)
        seen, failed = listing.files, listing.failed
        self._directories = listing.directories
        self._note_listing(failed)
        files: dict[Path, _Reading] = (
            {
                path: reading
                for path, reading in self._files.items()
                if any(path == f or f in path.parents for f in failed)
            }
            if failed
            else {}
        )
        for path, fingerprint in seen.items():  # sorted below, when something changed
            known = self._files.get(path)
            if known is None or known.fingerprint != fingerprint or known.retry:
                known = self._read(path, fingerprint, known)
            files[path] = known
        if (
            self._loaded
            and files.keys() == self._files.keys()
            and all(files[p] is self._files[p] for p in files)
        ):
            return False
        self._files = dict(sorted(files.items()))
        self._loaded = True
        documents = [d for reading in self._files.values() for d in reading.documents]
        state = build_state(documents, self.mesh, self._build_cache)
        problems = tuple(p for reading in self._files.values() for p in reading.problems)
        state = _with_problems(state, problems)
        self._report(state)
        self._state = state
        return True

    async def run(self, on_change: Callable[[MeshState], None]) -> None:
        """Looks again when something in the tree changed (inotify: `dir_watch`), a
        `poll_interval` after the first event (an editor's burst of writes is one look), and
        also every `rescan_interval` for what inotify cannot see. It looks every
        `poll_interval` instead while a look is to be retried, after a directory was first
        watched (it may have changed before), and always where inotify is missing (polling
        the scale benchmark's 150 files cost 25 ms of CPU a second, idle)."""
        watch = DirectoryWatch.open(self.directory)
        woken = asyncio.Event()
        loop = asyncio.get_running_loop()
        if watch is not None:
            # Read at once: the descriptor stays readable, and the loop busy, until it is.
            loop.add_reader(watch.fileno(), _drain_and_set, watch, woken)
        try:
            while True:
                soon = self._to_retry()
                if watch is not None:  # before the look it is for: no change falls between
                    new = watch.watch(self._directories or [self.directory])
                    if new is None:  # refused (the watch limit): poll from now on
                        _unwatch(loop, watch)
                        watch = None
                    soon = soon or bool(new)
                if watch is None or soon:
                    await asyncio.sleep(self.poll_interval)
                else:
                    await _wait(woken, max(self.rescan_interval, self.poll_interval))
                    await asyncio.sleep(self.poll_interval)
                woken.clear()
                if await self._look():
                    on_change(self._state)
        finally:
            if watch is not None:
                _unwatch(loop, watch)

    async def _look(self) -> bool:
        try:
            # Off the event loop: walking the tree and parsing and building a big mesh
            # must not stall the ADS streams. Only this task ever calls `refresh` then.
            return await asyncio.to_thread(self.refresh)
        except Exception:  # a bug here must not stop the watching for good
            log.exception("reading %s failed; keeping the last state", self.directory)
            return False

    def _to_retry(self) -> bool:
        """Whether a look is due without an event: none was made yet, a listing failed, or a
        read is to be retried."""
        return (
            not self._loaded
            or bool(self._listing_problems)
            or any(r.retry for r in self._files.values())
        )

    def _note_listing(self, failed: Mapping[Path, str]) -> None:
        problems = tuple(
            ConfigProblem(str(path), "", "", message) for path, message in sorted(failed.items())
        )
        for _ in failed:
            self._count_error("listing")
        if problems != self._listing_problems:
            for problem in problems:
                log.error("config %s", untrusted(problem, 500))
            if not problems:
                log.info("config directory %s listed again", self.directory)
        self._listing_problems = problems

    def _read(self, path: Path, fingerprint: Fingerprint, known: _Reading | None) -> _Reading:
        last_good: Mapping[ObjectId, Document] = known.good if known else {}
        try:
            text = _read_text(path, fingerprint, self.limits.max_bytes)
            documents, errors = parse_text(text, str(path), self.limits.max_documents)
            judged = [j for document in documents for j in judge(document, self._build_cache)]
            if len(judged) > self.limits.max_documents:
                raise TooManyDocumentsError(f"more than {self.limits.max_documents} objects")
        except TooManyDocumentsError as error:
            return self._refused(path, fingerprint, last_good, FileReadError(
                f"{error} (the limit is --config-max-documents)", "too_many_documents",
                transient=False,
            ))  # fmt: skip
        except FileReadError as error:
            return self._refused(path, fingerprint, last_good, error)
        problems = [ConfigProblem(e.document_origin, "", "", e.message) for e in errors]
        good = {j.key: j.document for j in judged if j.ok and j.key is not None}
        invalid = {j.key for j in judged if not j.ok}
        # Nothing at all where there were objects: a save caught half-way (truncated, not yet
        # written). Deleting a file's objects takes deleting the file, or leaving one in it.
        emptied = not judged and not problems and bool(last_good)
        clean = not problems and not invalid and not emptied
        if problems:
            self._count_error("syntax")
        if invalid:
            self._count_error("invalid")
        if emptied:
            self._count_error("empty")
            problems = [ConfigProblem(str(path), "", "", "no documents (a save in progress?)")]
        kept = {
            key: document
            for key, document in last_good.items()
            if key not in good and (key in invalid or not clean)
        }
        notes: tuple[ConfigProblem, ...] = ()
        if kept:
            message = f"this file has errors{_kept_note(kept)}"
            notes = (ConfigProblem(str(path), "", "", message, severity="warning"),)
        return _Reading(
            fingerprint,
            (*(j.document for j in judged), *kept.values()),
            {**good, **kept},
            (*problems, *notes),
        )

    def _refused(
        self,
        path: Path,
        fingerprint: Fingerprint,
        last_good: Mapping[ObjectId, Document],
        error: FileReadError,
    ) -> _Reading:
        """A file not read (or refused whole): its last good objects stay."""
        self._count_error(error.reason)
        kept = dict(last_good)
        what = f"unreadable: {error}" if error.reason == "unreadable" else str(error)
        problem = ConfigProblem(str(path), "", "", f"{what}{_kept_note(kept)}")
        return _Reading(fingerprint, tuple(kept.values()), kept, (problem,), error.transient)

    def _report(self, state: MeshState) -> None:
        log_new_problems(log, self._state, state)
        log.info("config loaded from %s: %s", self.directory, state.summary())


@dataclass(frozen=True, slots=True)
class _Listing:
    files: dict[Path, Fingerprint]  # every config file, with its fingerprint
    failed: dict[Path, str]  # what could not be listed or looked at, with why
    directories: list[Path]  # the directories listed (for `dir_watch`)


def _list(directory: Path, paths: dict[str, Path] | None = None) -> _Listing:
    """Every config file under `directory`. Unlike `os.walk`, no error is swallowed. `paths`:
    the Path objects of the previous listing, reused (and replaced by this one's)."""
    known = paths if paths is not None else {}
    directories: list[Path] = []
    listed: dict[str, Path] = {}
    found: dict[Path, Fingerprint] = {}
    failed: dict[Path, str] = {}
    pending = [directory]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            failed[current] = (
                f"cannot list: {_describe(error)}; keeping the last state of everything under it"
            )
            continue
        directories.append(current)
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = known.get(entry.path) or Path(entry.path)
            listed[entry.path] = path
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                    continue
                if not entry.name.endswith(SUFFIXES):
                    continue
                st = os.stat(entry.path)  # through symlinks: a ConfigMap mount's files are links
            except FileNotFoundError:
                continue  # removed between the listing and now, or a dangling link
            except OSError as error:
                failed[path] = f"cannot look at: {_describe(error)}; keeping its last state"
                continue
            found[path] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
    if paths is not None:
        paths.clear()
        paths.update(listed)
    return _Listing(found, failed, directories)


def _read_text(path: Path, fingerprint: Fingerprint, max_bytes: int) -> str:
    """The file's text, if it is a regular file within the limit: what the listing saw is
    checked first (a FIFO or a device is never opened), then `files.read_text` checks again."""
    if not stat.S_ISREG(fingerprint[4]):
        raise files.not_regular(fingerprint[4])
    if fingerprint[2] > max_bytes:
        raise files.too_large(fingerprint[2], max_bytes, _SIZE_FLAG)
    return files.read_text(path, max_bytes, flag=_SIZE_FLAG)


def _unwatch(loop: asyncio.AbstractEventLoop, watch: DirectoryWatch) -> None:
    loop.remove_reader(watch.fileno())
    watch.close()


def _drain_and_set(watch: DirectoryWatch, woken: asyncio.Event) -> None:
    if watch.drain():
        woken.set()


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


def _describe(error: OSError) -> str:
    return error.strerror or str(error)


def _kept_note(kept: Mapping[ObjectId, Document]) -> str:
    if not kept:
        return ""
    names = [
        f"{kind} {f'{namespace}/' if namespace else ''}{name}" for kind, namespace, name in kept
    ]
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return f"; kept the last good version of {', '.join(names[:5])}{more}"


def _with_problems(state: MeshState, problems: tuple[ConfigProblem, ...]) -> MeshState:
    if not problems:
        return state
    return replace(state, problems=(*problems, *state.problems))
