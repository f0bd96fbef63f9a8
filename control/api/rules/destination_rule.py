"""DestinationRule rules (Istio's ValidateDestinationRule)."""

from __future__ import annotations

from control.api.models.destination_rule import DestinationRule
from control.api.rules import common
from control.api.rules.context import Findings
from control.api.rules.http_parts import check_subset_name
from control.api.rules.traffic_policy import check_traffic_policy


def check(spec: DestinationRule, findings: Findings) -> None:
    problem = common.wildcard_domain_error(spec.host or "")
    if spec.host is None:
        findings.error("spec.host", "host is required")
    elif problem:
        findings.error("spec.host", problem)
    if spec.traffic_policy is not None:
        check_traffic_policy(findings, "spec.trafficPolicy", spec.traffic_policy)
    names: set[str] = set()
    for index, subset in enumerate(spec.subsets):
        where = f"spec.subsets[{index}]"
        name = subset.name or ""
        if name in names:
            findings.error(f"{where}.name", f"duplicate subset names: {name}")
        names.add(name)
        check_subset_name(findings, f"{where}.name", name)
        common.check_labels(findings, f"{where}.labels", subset.labels)
        if not subset.labels:
            findings.warn(
                where,
                f"subset {name or '#' + str(index)} has no labels: it selects "
                "every endpoint of the host",
            )
        if subset.traffic_policy is not None:
            check_traffic_policy(findings, f"{where}.trafficPolicy", subset.traffic_policy)
    common.check_export_to(findings, "spec.exportTo", spec.export_to)
    if spec.workload_selector is not None:
        common.check_selector_labels(
            findings, "spec.workloadSelector.matchLabels", spec.workload_selector.match_labels
        )
        findings.warn(
            "spec.workloadSelector",
            "mizzen does not apply a DestinationRule's workloadSelector yet: the rule applies "
            "to every workload that sees it",
        )
        if any(entry != "." for entry in spec.export_to):
            findings.error(
                "spec.exportTo",
                "destination rule with workload selector cannot have "
                "exportTo beyond current namespace",
            )
