"""Pilot's part: translation of the mesh state into Envoy resources (`translate`, pure, with
Sidecar scoping and shared per-push work in `translate.shared`), the per-proxy snapshots and
their pushes (`cache`: only to the proxies a change concerns), and the ADS server that hands them
to the proxies (`ads`: State of the World or Delta, a slow proxy never holding up the rest)."""
