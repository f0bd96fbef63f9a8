"""Pilot's part: translation of the mesh state into Envoy resources (`translate`, pure, with
Sidecar scoping and shared per-push work in `translate.shared`) and the ADS server that hands
them to the proxies, State of the World (`ads.py`) or Delta (`delta.py`), pushing each change
only to the proxies it concerns (`cache.py`) without letting a slow one hold up the rest
(`stream.py`, `throttle.py`)."""
