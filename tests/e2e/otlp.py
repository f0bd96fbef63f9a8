"""A small OTLP/gRPC trace receiver for the tests: `TraceService/Export` on a gRPC server of its
own, keeping every span with its resource's `service.name`.

The messages are opentelemetry-proto's, as the lock holds them through xds-protos: an older
revision, where ResourceSpans' field 2 is still called `instrumentation_library_spans` (today's
`scope_spans`, the same wire format: field 1 the scope, field 2 the spans). Installing the
current opentelemetry-proto beside it would overwrite xds-protos' copy of the same modules."""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@dataclass(frozen=True)
class Span:
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int


class OtlpReceiver:
    def __init__(self, address: str = "0.0.0.0") -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(
            self._export,
            request_deserializer=trace_service_pb2.ExportTraceServiceRequest.FromString,
            response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString,
        )
        service, method = _METHOD.rsplit("/", 1)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service.lstrip("/"), {method: handler}),)
        )
        self.port = self._server.add_insecure_port(f"{address}:0")

    def _export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        found = []
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "")
            for scope in resource_spans.instrumentation_library_spans:
                for span in scope.spans:
                    found.append(
                        Span(service, span.trace_id.hex(), span.span_id.hex(),
                             span.parent_span_id.hex(), span.name, span.kind)
                    )  # fmt: skip
        with self._lock:
            self.spans += found
        return trace_service_pb2.ExportTraceServiceResponse()

    def snapshot(self) -> list[Span]:
        with self._lock:
            return list(self.spans)

    def __enter__(self) -> OtlpReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=0)
