"""Pilot's part: translation of the mesh state into Envoy resources (`translate`, pure) and the
ADS server that hands them to the proxies."""
