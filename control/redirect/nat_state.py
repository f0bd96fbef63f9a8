"""What of the mesh is already in a netns's nat table, and the restore text that replaces or
removes it (pure: `iptables-save` text in, `iptables-restore --noflush` text out).

Why one restore carries everything: `iptables-restore` commits a table in one transaction
(legacy: one table replace; nft: one batch), so a re-run never exposes a moment without capture
and never leaves half a ruleset behind. Declaring an existing chain under `--noflush` flushes it;
the jumps from the built-in chains are not in our chains, so they are deleted (`-D`) one by one,
exactly as `iptables-save` printed them, before the new ones are appended. If the table changed
between the save and the restore, a `-D` fails and the whole restore is rejected: the caller
reads the table again and retries.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from control.redirect.rules import CHAIN_PREFIX, IpFamily, Ruleset

_JUMP_FLAGS = frozenset({"-j", "--jump", "-g", "--goto"})


@dataclass(frozen=True)
class NatState:
    """The mesh's chains in a nat table, and the rules of other chains that jump into them."""

    mesh_chains: tuple[str, ...] = ()
    jumps: tuple[tuple[str, str], ...] = ()  # (chain, rule text after "-A CHAIN ")

    @property
    def present(self) -> bool:
        return bool(self.mesh_chains or self.jumps)


def is_mesh_chain(name: str) -> bool:
    return name.startswith(CHAIN_PREFIX)


def parse_nat_state(save_text: str) -> NatState:
    """Reads the nat table of `iptables-save` output (other tables are ignored)."""
    chains: list[str] = []
    jumps: list[tuple[str, str]] = []
    in_nat = False
    for raw in save_text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            in_nat = line[1:].strip() == "nat"
        elif not in_nat or line.startswith("#"):
            continue
        elif line.startswith(":"):
            name = line[1:].split(maxsplit=1)[0]
            if is_mesh_chain(name):
                chains.append(name)
        elif line.startswith("-A "):
            _, chain, *tokens = line.split()
            targets = {b for a, b in itertools.pairwise(tokens) if a in _JUMP_FLAGS}
            if not is_mesh_chain(chain) and any(is_mesh_chain(t) for t in targets):
                jumps.append((chain, " ".join(tokens)))
    return NatState(tuple(chains), tuple(jumps))


def replace_text(ruleset: Ruleset, state: NatState) -> str:
    """Restore text that leaves exactly `ruleset` in place of whatever of the mesh is there."""
    stale = [chain for chain in state.mesh_chains if chain not in ruleset.chains]
    lines = ["*nat"]
    # Declaring flushes (or creates): ours get refilled below, stale ones are emptied to delete.
    lines += [f":{chain} - [0:0]" for chain in (*ruleset.chains, *stale)]
    lines += [f"-D {chain} {rule}" for chain, rule in state.jumps]
    lines += [f"-X {chain}" for chain in stale]
    lines += [rule.render() for rule in ruleset.rules]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def cleanup_text(state: NatState) -> str | None:
    """Restore text that removes every trace of the mesh; `None` when there is none."""
    if not state.present:
        return None
    # An empty ruleset's family does not show in its text.
    return replace_text(Ruleset(IpFamily.V4, (), ()), state)
