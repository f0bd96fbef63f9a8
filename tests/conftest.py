"""Fixtures shared by the whole suite (each defined next to what it serves)."""

from tests.harness.fixtures import netns_session as netns_session
from tests.harness.fixtures import topology as topology
