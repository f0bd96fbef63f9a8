"""Test harness: network namespaces as pods (`netns.py`), a probe that reports where a TCP
connection landed (`probe.py`), and the pytest fixtures (`fixtures.py`)."""
