"""Policy: AuthorizationPolicy -> Envoy RBAC (HTTP and network), CUSTOM -> ext_authz,
RequestAuthentication -> jwt_authn, MeshConfig pathNormalization -> the HTTP connection
manager. Pure (protobuf-JSON dicts out). Entry points in `inbound`."""
