"""Istio's certificate API (`istio.v1.auth.IstioCertificateService`), built from descriptors.

The messages are defined here field by field (a `FileDescriptorProto` made in Python, added to
the default descriptor pool) rather than shipped as generated code, with Istio's package, names
and field numbers, so Istio's own agent can talk to mizzen's CA and mizzen's agent to Istio's:

    message IstioCertificateRequest {
      string csr = 1;                        // PEM
      int64 validity_duration = 3;           // seconds; 0: the CA's default
      google.protobuf.Struct metadata = 4;
    }
    message IstioCertificateResponse { repeated string cert_chain = 1; }  // leaf first, root last
    service IstioCertificateService {
      rpc CreateCertificate(IstioCertificateRequest) returns (IstioCertificateResponse);
    }
"""

from __future__ import annotations

from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2
from google.protobuf.message import Message

PACKAGE: Final = "istio.v1.auth"
SERVICE: Final = f"{PACKAGE}.IstioCertificateService"
METHOD: Final = "CreateCertificate"
METHOD_PATH: Final = f"/{SERVICE}/{METHOD}"
_FILE_NAME: Final = "mizzen/istio/v1/auth/ca.proto"

_F = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, kind: Any, label: Any = _F.LABEL_OPTIONAL, **extra: Any) -> Any:
    json_name = "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
    return _F(name=name, number=number, type=kind, label=label, json_name=json_name, **extra)


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name=_FILE_NAME,
        package=PACKAGE,
        syntax="proto3",
        dependency=[struct_pb2.DESCRIPTOR.name],
    )
    request = proto.message_type.add(name="IstioCertificateRequest")
    request.field.extend(
        [
            _field("csr", 1, _F.TYPE_STRING),
            _field("validity_duration", 3, _F.TYPE_INT64),
            _field("metadata", 4, _F.TYPE_MESSAGE, type_name=".google.protobuf.Struct"),
        ]
    )
    response = proto.message_type.add(name="IstioCertificateResponse")
    response.field.append(_field("cert_chain", 1, _F.TYPE_STRING, _F.LABEL_REPEATED))
    service = proto.service.add(name="IstioCertificateService")
    service.method.add(
        name=METHOD,
        input_type=f".{PACKAGE}.IstioCertificateRequest",
        output_type=f".{PACKAGE}.IstioCertificateResponse",
    )
    return proto


def _register() -> tuple[type[Message], type[Message]]:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_FILE_NAME)
    except KeyError:
        pool.Add(_file())
    request = message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{PACKAGE}.IstioCertificateRequest")
    )
    response = message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{PACKAGE}.IstioCertificateResponse")
    )
    return request, response


IstioCertificateRequest, IstioCertificateResponse = _register()


def new_request(csr_pem: str, validity_seconds: int, metadata: dict[str, Any] | None = None) -> Any:
    """A request message (typed `Any`: the class is made at run time)."""
    request = IstioCertificateRequest(csr=csr_pem, validity_duration=validity_seconds)
    if metadata:
        request.metadata.update(metadata)  # type: ignore[attr-defined]
    return request


def new_response(cert_chain: list[str]) -> Any:
    return IstioCertificateResponse(cert_chain=cert_chain)


def serialize(message: Message) -> bytes:
    return message.SerializeToString()


def parse_request(data: bytes) -> Any:
    return IstioCertificateRequest.FromString(data)


def parse_response(data: bytes) -> Any:
    return IstioCertificateResponse.FromString(data)
