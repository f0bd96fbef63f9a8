"""Backend choice and the apply transaction's retry, with a scripted runner: the case this machine
cannot show for real is a kernel without nf_tables (the real backends run in test_netns_redirect).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from control.redirect.apply import apply_redirect, cleanup_redirect
from control.redirect.backend import (
    LEGACY,
    NFT,
    PLAIN,
    BackendChoice,
    RedirectError,
    choose_backend,
)
from control.redirect.ipv6 import has_global_ipv6
from control.redirect.runner import CommandResult, LocalRunner
from injector.redirect.spec import RedirectSpec

EMPTY = "*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
MESHED = "*nat\n:MIZZEN_OUTPUT - [0:0]\n-A OUTPUT -p tcp -j MIZZEN_OUTPUT\nCOMMIT\n"
Handler = Callable[[Sequence[str], str], CommandResult]


@dataclass
class ScriptedRunner:
    """Tools that exist, and what each answers; records every call."""

    tools: set[str]
    answers: dict[str, Handler] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def which(self, tool: str) -> str | None:
        return f"/usr/sbin/{tool}" if tool in self.tools else None

    def run(self, argv: Sequence[str], stdin: str = "") -> CommandResult:
        self.calls.append(tuple(argv))
        handler = self.answers.get(argv[0])
        if handler is None:
            return CommandResult(127, "", f"{argv[0]}: not scripted")
        return handler(argv, stdin)


def ok(stdout: str = "") -> Handler:
    return lambda argv, stdin: CommandResult(0, stdout, "")


def fails(message: str) -> Handler:
    return lambda argv, stdin: CommandResult(1, "", message)


def tools(*variants: str) -> set[str]:
    return {f"{family}-{v}{action}" for family in ("iptables", "ip6tables") for v in variants
            for action in ("save", "restore")}  # fmt: skip


def test_nft_first_when_nothing_is_there() -> None:
    runner = ScriptedRunner(
        tools("nft-", "legacy-"),
        {"iptables-nft-save": ok(EMPTY), "iptables-legacy-save": ok(EMPTY)},
    )
    assert choose_backend(runner) == NFT


def test_legacy_when_the_kernel_has_no_nf_tables() -> None:
    runner = ScriptedRunner(
        tools("nft-", "legacy-"),
        {
            "iptables-nft-save": fails("Could not fetch rule set generation id: Invalid argument"),
            "iptables-legacy-save": ok(EMPTY),
        },
    )
    assert choose_backend(runner) == LEGACY


def test_the_backend_holding_the_mesh_keeps_it() -> None:
    runner = ScriptedRunner(
        tools("nft-", "legacy-"),
        {"iptables-nft-save": ok(EMPTY), "iptables-legacy-save": ok(MESHED)},
    )
    assert choose_backend(runner) == LEGACY


def test_plain_tools_when_no_variant_is_installed() -> None:
    assert choose_backend(ScriptedRunner(tools(""))) == PLAIN


def test_missing_iptables_is_a_clear_error() -> None:
    with pytest.raises(RedirectError, match=r"iptables-restore not found: install iptables"):
        choose_backend(ScriptedRunner(set()))
    with pytest.raises(RedirectError, match="iptables-legacy-restore not found"):
        choose_backend(ScriptedRunner(tools("nft-")), BackendChoice.LEGACY)


def test_unreadable_tables_say_so() -> None:
    runner = ScriptedRunner(tools("nft-"), {"iptables-nft-save": fails("Permission denied")})
    with pytest.raises(RedirectError, match="cannot read the nat table"):
        choose_backend(runner)


def test_a_rejected_restore_is_retried_on_a_fresh_read() -> None:
    restores: list[str] = []

    def restore(argv: Sequence[str], stdin: str) -> CommandResult:
        restores.append(stdin)
        rejected = len(restores) == 1
        return CommandResult(int(rejected), "", "Bad rule (does a matching rule exist?)")

    runner = ScriptedRunner(
        tools("nft-"),
        {
            "iptables-nft-save": ok(EMPTY),
            "iptables-nft-restore": restore,
            "ip6tables-nft-save": ok(EMPTY),
        },
    )
    applied = apply_redirect(RedirectSpec(), runner, ipv6=False)
    assert len(restores) == 2
    assert applied.backend == "iptables-nft"
    assert [c[0] for c in runner.calls].count("iptables-nft-save") >= 3  # choose + one per try


def test_a_restore_failing_twice_is_reported_with_its_message() -> None:
    runner = ScriptedRunner(
        tools("nft-"),
        {"iptables-nft-save": ok(EMPTY), "iptables-nft-restore": fails("line 7 failed")},
    )
    with pytest.raises(RedirectError, match="iptables-nft-restore failed: line 7 failed"):
        apply_redirect(RedirectSpec(), runner, ipv6=False)


def test_ipv6_without_ip6tables_names_the_way_out() -> None:
    runner = ScriptedRunner(
        {"iptables-nft-save", "iptables-nft-restore"}, {"iptables-nft-save": ok(EMPTY)}
    )
    with pytest.raises(RedirectError, match="--no-ipv6"):
        apply_redirect(RedirectSpec(), runner, ipv6=True)


def test_global_ipv6_detection() -> None:
    link_local_only = (
        "fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n"
        "00000000000000000000000000000001 01 80 10 80       lo\n"
    )
    assert not has_global_ipv6(link_local_only)
    assert has_global_ipv6(link_local_only + "fd000000000000000000000000000002 04 40 00 80 eth0\n")
    assert not has_global_ipv6("")


def test_cleanup_with_only_the_plain_tools() -> None:
    restored: list[str] = []

    def restore(argv: Sequence[str], stdin: str) -> CommandResult:
        restored.append(stdin)
        return CommandResult(0, "", "")

    runner = ScriptedRunner(
        tools(""),
        {"iptables-save": ok(MESHED), "ip6tables-save": ok(EMPTY), "iptables-restore": restore},
    )
    assert cleanup_redirect(runner) == ["iptables ipv4"]
    assert restored == ["*nat\n:MIZZEN_OUTPUT - [0:0]\n-D OUTPUT -p tcp -j MIZZEN_OUTPUT\n"
                        "-X MIZZEN_OUTPUT\nCOMMIT\n"]  # fmt: skip


def test_a_tool_that_cannot_run_is_a_result_not_an_exception(tmp_path: Path) -> None:
    tool = tmp_path / "iptables-restore"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o644)  # present, not executable
    result = LocalRunner().run([str(tool)])
    assert result.returncode == 126
    assert "iptables-restore" in result.stderr
    assert LocalRunner().run([str(tmp_path / "missing")]).returncode == 127
