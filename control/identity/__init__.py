"""Identity pieces shared by the CA and the agent (which never import each other): SPIFFE ids,
Istio's certificate API messages, keys and CSRs, PEM and certificate helpers. Pure: no I/O."""
