"""The base every spec model shares, and the small types several kinds use."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

# Scalars are strict, as the apiserver's schema is: "5" is not an integer, 1 is not a string.
# Integers carry protobuf's bounds (int32, uint32), as Istio's API declares them.
Str = StrictStr
Int = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
Bool = StrictBool
Float = StrictFloat
UInt = Annotated[StrictInt, Field(ge=0, le=2**32 - 1)]
Labels = dict[StrictStr, StrictStr]


class ApiModel(BaseModel):
    """Frozen, unknown fields refused, camelCase on the wire (as protobuf JSON names them).

    The proto field names (snake_case, `connect_timeout`) are accepted too, as Istio's protobuf
    JSON reader accepts them; the attribute names here are those proto names."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        hide_input_in_errors=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )

    def to_dict(self) -> dict[str, object]:
        """Back to the wire form: camelCase, only the fields the user set."""
        return self.model_dump(by_alias=True, exclude_unset=True, mode="json")


class Percent(ApiModel):
    """A percentage in [0, 100] (Istio's `Percent`)."""

    value: Float | None = None


class PortSelector(ApiModel):
    """A port of a service, by number."""

    number: UInt | None = None


class WorkloadSelector(ApiModel):
    """Selects workloads by their labels (networking's form)."""

    labels: Labels = Field(default_factory=dict)


class LabelSelector(ApiModel):
    """Selects workloads by their labels (security's form)."""

    match_labels: Labels = Field(default_factory=dict)


class PolicyTargetReference(ApiModel):
    """A Gateway API style reference to the object a policy attaches to."""

    group: Str | None = None
    kind: Str | None = None
    name: Str | None = None
    namespace: Str | None = None


class StringMatch(ApiModel):
    """Exactly one of exact, prefix or regex (RE2)."""

    exact: Str | None = None
    prefix: Str | None = None
    regex: Str | None = None
