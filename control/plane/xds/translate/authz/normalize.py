"""MeshConfig `pathNormalization` -> the HTTP connection manager's path settings (Istio's
mapping). Applied to every HTTP connection manager, so routing and policy see the same path:

| mode | `/a/../b`, `/./b` | `//b` | `%2F` |
|---|---|---|---|
| NONE | kept | kept | kept |
| BASE (= DEFAULT) | resolved (RFC 3986) | kept | kept |
| MERGE_SLASHES | resolved | merged | kept |
| DECODE_AND_MERGE_SLASHES | resolved | merged | decoded to `/` (then merged) |

BASE also decodes percent-encoded unreserved characters (`/%61dmin` is `/admin`) and never
takes `?query` or `#fragment` into the path that policies match (`url_path`)."""

from __future__ import annotations

from typing import Final

from control.plane.xds.translate.authz.matchers import Json

# BASE sets only what differs from Envoy's defaults (no slash merging; escaped slashes kept:
# Envoy's IMPLEMENTATION_SPECIFIC_DEFAULT is KEEP_UNCHANGED), so existing config is unchanged.
MODES: Final[dict[str, Json]] = {
    "NONE": {"normalize_path": False},
    "BASE": {"normalize_path": True},
    "MERGE_SLASHES": {"normalize_path": True, "merge_slashes": True},
    "DECODE_AND_MERGE_SLASHES": {"normalize_path": True, "merge_slashes": True,
                                 "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD"},
}  # fmt: skip


def hcm_path_settings(mode: str) -> Json:
    return dict(MODES["BASE" if mode == "DEFAULT" else mode])
