"""`mizzen init`'s command line, without touching any netns: PATH holds no iptables here, so a
flag that slipped through validation would show as exit 1 ("not found"), not 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from control.cli.main import main
from control.redirect.rules import IpFamily
from tests.redirect.golden import TESTDATA


@pytest.fixture(autouse=True)
def no_iptables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))


BAD_FLAGS = [
    ("proxy-uid", "abc"),
    ("proxy-gid", "-1"),
    ("outbound-port", "0"),
    ("inbound-port", "70000"),
    ("mode", "SIDEWAYS"),
    ("include-outbound-cidrs", "10.0.0.0"),
    ("exclude-outbound-cidrs", "nope/8"),
    ("include-outbound-ports", "*"),
    ("exclude-outbound-ports", "80x"),
    ("include-inbound-ports", "\u0661\u0662"),
    ("exclude-inbound-ports", "*"),
    ("exclude-interfaces", "eth0;reboot"),
    ("exclude-interfaces", "a-name-longer-than-15"),
    ("exclude-interfaces", "eth0,-j"),
    ("exclude-interfaces", ".."),
    # IPv6 zone ids: `ipaddress` takes any text after `%`, newlines and iptables words included.
    ("exclude-outbound-cidrs", "fe80::%eth0/10"),
    ("include-outbound-cidrs", "fe80::%x\n-A OUTPUT -j ACCEPT /10"),
    ("exclude-outbound-cidrs", "10.0.0.0/8 -j ACCEPT"),
]


@pytest.mark.parametrize(("flag", "value"), BAD_FLAGS)
def test_a_bad_flag_exits_2_naming_it(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", f"--{flag}={value}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mizzen init: --{flag}: ")
    assert "Traceback" not in err


def test_tproxy_is_refused_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--mode=TPROXY"]) == 2
    err = capsys.readouterr().err
    assert "mizzen init: --mode: TPROXY interception is not supported yet" in err


def test_dry_run_prints_both_families_and_needs_no_iptables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["init", "--dry-run"]) == 0
    expected = "".join(
        f"# {family.value}: {tool} --noflush\n"
        + (TESTDATA / f"default.{family.value}.rules").read_text()
        for family, tool in ((IpFamily.V4, "iptables-restore"), (IpFamily.V6, "ip6tables-restore"))
    )
    assert capsys.readouterr().out == expected


def test_dry_run_without_ipv6(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--dry-run", "--no-ipv6", "--exclude-outbound-ports=9000"]) == 0
    out = capsys.readouterr().out
    assert "# ipv6" not in out
    assert "-A MIZZEN_OUTPUT -p tcp --dport 9000 -j RETURN" in out


def test_mode_none_applies_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--mode=NONE"]) == 0
    assert "NONE: no redirect to apply" in capsys.readouterr().out


def test_missing_iptables_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mizzen init: iptables-restore not found: install iptables")
    assert main(["init", "--cleanup"]) == 1


def test_dry_run_and_cleanup_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["init", "--dry-run", "--cleanup"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
