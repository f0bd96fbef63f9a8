"""The CRDs the install ships: one file per kind in `manifests/crds/`."""

from pathlib import Path

CRD_FILES = sorted((Path(__file__).resolve().parents[2] / "manifests" / "crds").glob("*.yaml"))
