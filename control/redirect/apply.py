"""Applies, replaces or removes the mesh's nat rules in the current network namespace.

Each family is changed by one `iptables-restore --noflush` transaction (see
`control.redirect.nat_state`): read the table, compute the text that leaves exactly the new ruleset,
restore. A restore rejected because the table changed in between is retried once on a fresh read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from control.redirect.backend import (
    MISSING_HINT,
    Backend,
    BackendChoice,
    RedirectError,
    choose_backend,
    usable_backends,
)
from control.redirect.nat_state import NatState, cleanup_text, replace_text
from control.redirect.rules import IpFamily, Ruleset, build_ruleset
from control.redirect.runner import Runner
from injector.redirect.spec import RedirectSpec

_ATTEMPTS = 2
_TextFor = Callable[[NatState], str | None]


@dataclass(frozen=True)
class Applied:
    """What was done, for the command's one-line report."""

    backend: str
    rules: dict[IpFamily, int]

    def describe(self) -> str:
        counts = ", ".join(f"{n} {family.value} rules" for family, n in self.rules.items())
        return f"{counts or 'no rules'} ({self.backend})"


def families(ipv6: bool) -> list[IpFamily]:
    return [IpFamily.V4, IpFamily.V6] if ipv6 else [IpFamily.V4]


def apply_redirect(
    spec: RedirectSpec,
    runner: Runner,
    *,
    ipv6: bool,
    choice: BackendChoice = BackendChoice.AUTO,
) -> Applied:
    """Leaves exactly `spec`'s rules in the netns: IPv4, and IPv6 when asked (else none)."""
    rulesets = [build_ruleset(spec, family) for family in families(ipv6)]
    backend = choose_backend(runner, choice)
    if ipv6 and not backend.installed(runner, IpFamily.V6):
        raise RedirectError(
            f"the pod has IPv6 addresses but {backend.tool(IpFamily.V6, 'restore')} is missing: "
            f"{MISSING_HINT}, or pass --no-ipv6"
        )
    for ruleset in rulesets:
        _transact(backend, ruleset.family, runner, partial(replace_text, ruleset))
    for family in IpFamily:  # a family no longer asked for keeps no rules of an earlier run
        if family not in {r.family for r in rulesets} and backend.installed(runner, family):
            _transact(backend, family, runner, cleanup_text)
    for other, _ in usable_backends(runner):
        if other != backend:  # one copy only, even when the backend was forced
            _cleanup_backend(other, runner)
    return Applied(backend.label, {r.family: len(r.rules) for r in rulesets})


def cleanup_redirect(runner: Runner) -> list[str]:
    """Removes the mesh's chains and jumps from every backend and family that holds them; returns
    what was cleaned (e.g. `["iptables-nft ipv4"]`)."""
    usable = [backend for backend, _ in usable_backends(runner)]
    if not usable:  # the plain tools, or the clear "not found" / "cannot read" error
        usable = [choose_backend(runner)]
    return [label for backend in usable for label in _cleanup_backend(backend, runner)]


def _cleanup_backend(backend: Backend, runner: Runner) -> list[str]:
    cleaned = []
    for family in IpFamily:
        if backend.installed(runner, family) and _transact(backend, family, runner, cleanup_text):
            cleaned.append(f"{backend.label} {family.value}")
    return cleaned


def _transact(
    backend: Backend,
    family: IpFamily,
    runner: Runner,
    text_for: _TextFor,
) -> bool:
    """Restores `text_for(current state)`; False when there was nothing to do."""
    error = ""
    for _ in range(_ATTEMPTS):
        text = text_for(backend.read_state(runner, family))
        if text is None:
            return False
        result = runner.run(backend.restore_argv(family), stdin=text)
        if result.ok:
            return True
        error = result.stderr.strip() or f"exit status {result.returncode}"
    raise RedirectError(f"{backend.tool(family, 'restore')} failed: {error}")


def describe_rulesets(rulesets: Sequence[Ruleset]) -> str:
    """The dry run's output: each family's restore text under a comment naming its tool."""
    parts = []
    for ruleset in rulesets:
        tool = "iptables-restore" if ruleset.family is IpFamily.V4 else "ip6tables-restore"
        parts.append(f"# {ruleset.family.value}: {tool} --noflush\n{ruleset.render()}")
    return "".join(parts)
