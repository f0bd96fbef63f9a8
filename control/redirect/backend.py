"""Which iptables backend to use: nftables (`iptables-nft-*`), else legacy (`iptables-legacy-*`).

A netns that already holds the mesh's chains in one backend keeps that backend, so a re-run never
leaves a second copy in the other. Otherwise the first backend whose `save` works wins: nft first
(today's default everywhere), legacy where the kernel has no nf_tables. Where neither variant is
installed, the distribution's plain `iptables-restore` is used as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from control.redirect.nat_state import NatState, parse_nat_state
from control.redirect.rules import IpFamily
from control.redirect.runner import Runner


class BackendChoice(StrEnum):
    AUTO = "auto"
    NFT = "nft"
    LEGACY = "legacy"


class RedirectError(RuntimeError):
    """A failure to read or change the netns's rules; the message says what to do."""


@dataclass(frozen=True)
class Backend:
    """A family of tools: `variant` is "nft", "legacy" or "" (the unsuffixed tools)."""

    variant: str

    @property
    def label(self) -> str:
        return f"iptables-{self.variant}" if self.variant else "iptables"

    def tool(self, family: IpFamily, action: str) -> str:
        base = "iptables" if family is IpFamily.V4 else "ip6tables"
        return f"{base}-{self.variant}-{action}" if self.variant else f"{base}-{action}"

    def restore_argv(self, family: IpFamily) -> list[str]:
        # Legacy takes the global xtables lock: wait for it rather than fail. nft has no lock.
        wait = ["--wait=10"] if self.variant == "legacy" else []
        return [self.tool(family, "restore"), "--noflush", *wait]

    def save_argv(self, family: IpFamily) -> list[str]:
        return [self.tool(family, "save"), "-t", "nat"]

    def installed(self, runner: Runner, family: IpFamily) -> bool:
        return all(runner.which(self.tool(family, a)) for a in ("save", "restore"))

    def read_state(self, runner: Runner, family: IpFamily) -> NatState:
        result = runner.run(self.save_argv(family))
        if not result.ok:
            raise RedirectError(
                f"{self.tool(family, 'save')} failed: {result.stderr.strip() or result.returncode}"
            )
        return parse_nat_state(result.stdout)


NFT = Backend("nft")
LEGACY = Backend("legacy")
PLAIN = Backend("")
_BY_CHOICE = {BackendChoice.NFT: NFT, BackendChoice.LEGACY: LEGACY}

MISSING_HINT = "install iptables (Debian/Ubuntu: apt-get install iptables)"


def usable_backends(
    runner: Runner, errors: list[str] | None = None
) -> list[tuple[Backend, NatState]]:
    """Installed backends whose `save` works here, each with the netns's current IPv4 state;
    the failures of the others are appended to `errors`."""
    usable = []
    for backend in (NFT, LEGACY):
        if not backend.installed(runner, IpFamily.V4):
            continue
        try:
            usable.append((backend, backend.read_state(runner, IpFamily.V4)))
        except RedirectError as error:
            if errors is not None:
                errors.append(str(error))
    return usable


def choose_backend(runner: Runner, choice: BackendChoice = BackendChoice.AUTO) -> Backend:
    """The backend to apply with; raises `RedirectError` naming the missing tool."""
    if choice is not BackendChoice.AUTO:
        backend = _BY_CHOICE[choice]
        if not backend.installed(runner, IpFamily.V4):
            raise RedirectError(f"{backend.tool(IpFamily.V4, 'restore')} not found: {MISSING_HINT}")
        return backend
    errors: list[str] = []
    usable = usable_backends(runner, errors)
    for backend, state in usable:
        if state.present:
            return backend
    if usable:
        return usable[0][0]
    if errors:
        raise RedirectError(
            f"cannot read the nat table (root with CAP_NET_ADMIN needed): {'; '.join(errors)}"
        )
    if PLAIN.installed(runner, IpFamily.V4):
        return PLAIN
    raise RedirectError(f"iptables-restore not found: {MISSING_HINT}")
