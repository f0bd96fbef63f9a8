"""The injection settings file, read by `mizzen inject`, `mizzen webhook` and `mizzen control`
(the injector stands alone, so its settings are read here, with the shared reader)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from control.config.mesh_config import MeshConfig
from control.config.settings import SettingsFileError, describe, read_mapping
from injector import InjectionConfig

__all__ = ["SettingsFileError", "injection_for_mesh", "load_injection_config"]
# The injection settings that are the mesh's, not the injector's: taken from the mesh config.
# (`enablePrometheusMerge` is a MeshConfig key in Istio: the injector honours the mesh's.)
_MESH_FIELDS = ("trust_domain", "cluster_domain", "enable_prometheus_merge")


def load_injection_config(path: Path | None, flag: str = "--config") -> InjectionConfig:
    """The injection settings (a flat mapping of camelCase keys); the defaults without a file."""
    if path is None:
        return InjectionConfig()
    data = read_mapping(path, flag)
    try:
        return InjectionConfig.from_mapping(data)
    except ValidationError as error:
        raise SettingsFileError(f"{flag} {path}: {describe(error)}") from None


def injection_for_mesh(mesh: MeshConfig, config: InjectionConfig, flag: str) -> InjectionConfig:
    """The injection settings of this mesh: its trust domain, cluster domain and
    `enablePrometheusMerge` are the mesh config's, so the pods and the control plane can never
    disagree about them. A settings file
    that sets either to another value is refused, naming both."""
    for name in _MESH_FIELDS:
        given, mesh_value = getattr(config, name), getattr(mesh, name)
        if name in config.model_fields_set and given != mesh_value:
            key = to_camel(name)
            raise SettingsFileError(
                f"{flag}: {key} {given!r} disagrees with the mesh config's {mesh_value!r} "
                f"(set it once, in --mesh-config)"
            )
    return config.model_copy(update={name: getattr(mesh, name) for name in _MESH_FIELDS})
