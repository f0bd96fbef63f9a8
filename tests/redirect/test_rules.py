"""Rule generation (pure): golden rulesets per flag combination, and properties of any spec."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control.cli import init_cmd
from control.redirect.rules import (
    IN_REDIRECT,
    NEVER_CAPTURED_INBOUND,
    IpFamily,
    Rule,
    build_ruleset,
)
from injector.redirect.spec import InterceptionMode, RedirectSpec, RedirectSpecError
from tests.redirect.golden import CASES, case_spec, check_golden, golden_path, parse_flags


@pytest.mark.parametrize("family", list(IpFamily), ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_golden_ruleset(case: Path, family: IpFamily) -> None:
    check_golden(golden_path(case, family), build_ruleset(case_spec(case), family).render())


def test_every_golden_file_has_its_case() -> None:
    stems = {p.stem for p in CASES}
    for rules in CASES[0].parent.glob("*.rules"):
        assert rules.name.split(".")[0] in stems, f"{rules.name} has no .args"


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_the_injectors_args_reproduce_the_spec(case: Path) -> None:
    """`to_args` (what the injector emits) parses back, through `mizzen init`'s flags, to the same
    spec: the two sides agree on every flag name."""
    spec = case_spec(case)
    assert init_cmd.parse_spec(parse_flags(spec.to_args())) == spec


def test_tproxy_is_refused_naming_the_flag() -> None:
    spec = RedirectSpec(mode=InterceptionMode.TPROXY)
    with pytest.raises(RedirectSpecError, match="not supported yet") as caught:
        build_ruleset(spec, IpFamily.V4)
    assert caught.value.field == "mode"


def test_an_interface_that_would_read_as_an_option_is_refused_even_without_from_flags() -> None:
    with pytest.raises(RedirectSpecError, match="exclude-interfaces"):
        build_ruleset(RedirectSpec(exclude_interfaces=("-j",)), IpFamily.V4)


def test_an_interface_with_a_trailing_newline_never_reaches_the_restore_text() -> None:
    for name in ("eth0\n", " eth0", "eth0,eth1"):
        with pytest.raises(RedirectSpecError, match="exclude-interfaces"):
            build_ruleset(RedirectSpec(exclude_interfaces=(name,)), IpFamily.V4)


def test_none_gives_an_empty_ruleset() -> None:
    ruleset = build_ruleset(RedirectSpec(mode=InterceptionMode.NONE), IpFamily.V4)
    assert ruleset.empty
    assert ruleset.render() == "*nat\nCOMMIT\n"


@pytest.mark.parametrize("token", ["eth0 -j ACCEPT", "a\nCOMMIT", "eth0\n", "x'y", "", "$(id)"])
def test_a_rule_refuses_tokens_that_could_change_the_file(token: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        Rule("MIZZEN_OUTPUT", ("-o", token))


_LINE = re.compile(r"^(\*nat|COMMIT|:MIZZEN_[A-Z_]+ - \[0:0\]|-A [A-Z_]+( [A-Za-z0-9_.:/!\-]+)+)$")
_ports = st.lists(st.integers(1, 65535), max_size=4).map(tuple)
_v4 = st.ip_addresses(v=4).map(lambda a: f"{a}/32")
_v6 = st.ip_addresses(v=6).map(lambda a: f"{a}/128")
_cidrs = st.lists(_v4 | _v6, max_size=3).map(tuple)


@settings(max_examples=200, deadline=None)
@given(
    include_cidrs=st.none() | _cidrs,
    exclude_cidrs=_cidrs,
    include_out=_ports,
    exclude_out=_ports,
    include_in=st.none() | _ports,
    exclude_in=_ports,
    interfaces=st.lists(st.sampled_from(["eth1", "net1", "wg0"]), max_size=2).map(tuple),
    family=st.sampled_from(list(IpFamily)),
)
def test_any_spec_gives_a_well_formed_ruleset(
    include_cidrs: tuple[str, ...] | None,
    exclude_cidrs: tuple[str, ...],
    include_out: tuple[int, ...],
    exclude_out: tuple[int, ...],
    include_in: tuple[int, ...] | None,
    exclude_in: tuple[int, ...],
    interfaces: tuple[str, ...],
    family: IpFamily,
) -> None:
    spec = RedirectSpec(
        include_outbound_cidrs=include_cidrs,
        exclude_outbound_cidrs=exclude_cidrs,
        include_outbound_ports=include_out,
        exclude_outbound_ports=exclude_out,
        include_inbound_ports=include_in,
        exclude_inbound_ports=exclude_in,
        exclude_interfaces=interfaces,
    )
    lines = build_ruleset(spec, family).render().splitlines()
    assert all(_LINE.match(line) for line in lines), lines
    assert lines.count("-A OUTPUT -p tcp -j MIZZEN_OUTPUT") == 1
    assert lines.count("-A PREROUTING -p tcp -j MIZZEN_INBOUND") == (include_in != ())
    for port in NEVER_CAPTURED_INBOUND:
        assert f"-A MIZZEN_INBOUND -p tcp --dport {port} -j {IN_REDIRECT}" not in lines
    other = "/32" if family is IpFamily.V6 else "/128"
    assert not [line for line in lines if other in line], "a CIDR of the other family leaked"
    if interfaces:  # excluded interfaces come first in both chains
        first_out = next(line for line in lines if line.startswith("-A MIZZEN_OUTPUT"))
        assert first_out == f"-A MIZZEN_OUTPUT -o {interfaces[0]} -j RETURN"
