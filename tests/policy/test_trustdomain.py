"""Trust-domain migration of policy values (`authz.trustdomain`), case by case. The expected
lists restate the intent of Istio's TestReplaceTrustDomainAliases
(pilot/pkg/security/trustdomain/bundle_test.go) and of its builder golden
extended-trust-domains-out.yaml, written here as data; the wire behaviour is in the Envoy table
(cases/table.yaml, `td-*`)."""

from __future__ import annotations

import pytest

from control.plane.xds.translate.authz import matchers
from control.plane.xds.translate.authz.trustdomain import principal_aliases, trust_domain_aliases

PRINCIPALS = [
    # (bundle: trust domain then aliases, principals, expected)
    (("cluster.local",), ["cluster.local/ns/foo/sa/bar"], ["cluster.local/ns/foo/sa/bar"]),
    (("cluster.local",), ["*"], ["*"]),
    (("cluster.local",), ["*/ns/foo/sa/bar"], ["*/ns/foo/sa/bar"]),
    (("td2", "td1"), ["td1/ns/foo/sa/bar"], ["td2/ns/foo/sa/bar", "td1/ns/foo/sa/bar"]),
    (("td1", "cluster.local"), ["cluster.local/ns/foo/sa/bar", "cluster.local/ns/yyy/sa/zzz"],
     ["td1/ns/foo/sa/bar", "cluster.local/ns/foo/sa/bar", "td1/ns/yyy/sa/zzz",
      "cluster.local/ns/yyy/sa/zzz"]),
    (("td1", "cluster.local"), ["*/ns/foo/sa/bar", "*sa/zzz", "*"],
     ["*/ns/foo/sa/bar", "*sa/zzz", "*"]),
    (("td2", "td1", "cluster.local"), ["cluster.local/ns/foo/sa/bar", "td1/ns/yyy/sa/zzz"],
     ["td2/ns/foo/sa/bar", "td1/ns/foo/sa/bar", "cluster.local/ns/foo/sa/bar",
      "td2/ns/yyy/sa/zzz", "td1/ns/yyy/sa/zzz", "cluster.local/ns/yyy/sa/zzz"]),
    (("td2", "foo-td1", "cluster.local"), ["*-td1/ns/foo/sa/bar"],
     ["td2/ns/foo/sa/bar", "*-td1/ns/foo/sa/bar", "cluster.local/ns/foo/sa/bar"]),
    (("td1", "td2"), ["some-td/ns/foo/sa/bar"], ["some-td/ns/foo/sa/bar"]),
    (("td1", "td2", "some-td"), ["some-td/ns/foo/sa/bar"],
     ["td1/ns/foo/sa/bar", "td2/ns/foo/sa/bar", "some-td/ns/foo/sa/bar"]),
    (("new-td", "td2", "td3"), ["td1/ns/some-ns/sa/some-sa", "td2/ns/foo/sa/bar"],
     ["td1/ns/some-ns/sa/some-sa", "new-td/ns/foo/sa/bar", "td2/ns/foo/sa/bar",
      "td3/ns/foo/sa/bar"]),
    # cluster.local points at the mesh's trust domain even when it is not in the bundle.
    (("new-td",), ["cluster.local/ns/a/sa/b"], ["new-td/ns/a/sa/b"]),
    # Not five segments: the trust domain is not checked, the value is kept.
    (("new-td", "old-td"), ["old-td/ns/a/*", "old-td/ns/a/sa/b/extra"],
     ["old-td/ns/a/*", "old-td/ns/a/sa/b/extra"]),
]  # fmt: skip


@pytest.mark.parametrize(("bundle", "principals", "expected"), PRINCIPALS)
def test_principal_aliases(
    bundle: tuple[str, ...], principals: list[str], expected: list[str]
) -> None:
    assert principal_aliases(principals, bundle) == expected


def test_trust_domain_values() -> None:
    bundle = ("new-td", "old-td")
    assert trust_domain_aliases(["old-td", "other", "new-td"], bundle) == [
        "new-td", "old-td", "other"]  # fmt: skip
    assert trust_domain_aliases(["cluster.local"], bundle) == ["cluster.local"]
    assert trust_domain_aliases(["bad*"], bundle) == ["bad*"]


def test_trust_domain_matchers_escape_and_stay_in_the_authority() -> None:
    assert matchers.trust_domain("another.local") == {"prefix": "spiffe://another.local/"}
    assert matchers.trust_domain("bad*") == matchers.regex(r"spiffe\:\/\/bad[^/]*/.*")
    assert matchers.trust_domain("*.example") == matchers.regex(r"spiffe\:\/\/[^/]*\.example/.*")
    assert matchers.trust_domain("*") == matchers.regex(r"spiffe\:\/\/[^/]+/.*")


def test_path_templates() -> None:
    assert matchers.is_path_template("/a/{*}/b")
    assert matchers.is_path_template("/a/{**}")
    assert not matchers.is_path_template("/a/*")
    config = matchers.uri_template("/{*}/admin/{**}")["typed_config"]
    assert config["path_template"] == "/*/admin/**"
