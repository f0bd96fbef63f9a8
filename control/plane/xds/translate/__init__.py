"""Mesh state + proxy -> Envoy v3 resources. Pure: protobuf in, protobuf out, no I/O, no grpc.

Entry point: `control.plane.xds.translate.proxy_resources.translate(state, proxy)`.
"""
