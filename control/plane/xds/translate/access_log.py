"""Access logs as Istio writes them (MeshConfig `accessLogFile`, `accessLogEncoding`,
`accessLogFormat`): Envoy's file logger with Istio's default TEXT line or JSON keys, so tools
that parse Istio's sidecar logs read mizzen's."""

from __future__ import annotations

import json
from typing import Any, Final

from control.config.mesh_telemetry import AccessLogEncoding

_T: Final = "type.googleapis.com/envoy.extensions.access_loggers."
_FILE_TYPE: Final = _T + "file.v3.FileAccessLog"
# Envoy's own stream loggers write to its stdout/stderr without opening a path: the proxy's
# uid may not be allowed to reopen what /dev/stdout points at (a file the agent opened).
_STREAMS: Final = {
    "/dev/stdout": ("envoy.access_loggers.stdout", _T + "stream.v3.StdoutAccessLog"),
    "/dev/stderr": ("envoy.access_loggers.stderr", _T + "stream.v3.StderrAccessLog"),
}

# Istio's default TEXT format (one line per request or connection).
DEFAULT_TEXT_FORMAT: Final = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
    '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% '
    "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
    "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"
)

# Istio's default JSON keys.
DEFAULT_JSON_FORMAT: Final = {
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
    "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%",
    "connection_termination_details": "%CONNECTION_TERMINATION_DETAILS%",
    "upstream_transport_failure_reason": "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "duration": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%",
    "user_agent": "%REQ(USER-AGENT)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "authority": "%REQ(:AUTHORITY)%",
    "upstream_host": "%UPSTREAM_HOST%",
    "upstream_cluster": "%UPSTREAM_CLUSTER_RAW%",
    "upstream_local_address": "%UPSTREAM_LOCAL_ADDRESS%",
    "downstream_local_address": "%DOWNSTREAM_LOCAL_ADDRESS%",
    "downstream_remote_address": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "requested_server_name": "%REQUESTED_SERVER_NAME%",
    "route_name": "%ROUTE_NAME%",
}


def log_format(encoding: AccessLogEncoding, custom: str) -> dict[str, Any]:
    """Envoy's `log_format`. A custom TEXT format gets its newline; a custom JSON format is
    Istio's: a JSON object of key -> command operator, given as text."""
    if encoding is AccessLogEncoding.JSON:
        if custom:
            return {"json_format": json.loads(custom)}  # an object: MeshConfig checked it
        return {"json_format": dict(DEFAULT_JSON_FORMAT)}
    text = custom or DEFAULT_TEXT_FORMAT
    if not text.endswith("\n"):
        text += "\n"
    return {"text_format_source": {"inline_string": text}}


def file_access_log(path: str, encoding: AccessLogEncoding, custom: str) -> dict[str, Any]:
    """One access logger (`/dev/stdout` is the container's log). HTTP and TCP share the
    format, as in Istio: HTTP operators print `-` for a TCP connection."""
    fmt = log_format(encoding, custom)
    if path in _STREAMS:
        name, type_url = _STREAMS[path]
        return {"name": name, "typed_config": {"@type": type_url, "log_format": fmt}}
    return {
        "name": "envoy.access_loggers.file",
        "typed_config": {"@type": _FILE_TYPE, "path": path, "log_format": fmt},
    }
