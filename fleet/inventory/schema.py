"""Published JSON Schemas for the files users commit, generated from the typed models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from fleet.inventory.models import AppSpec, ClusterSpec, FleetSettings

SCHEMAS: dict[str, tuple[type[BaseModel], str]] = {
    "cluster": (ClusterSpec, "clusters/<name>.yaml"),
    "app": (AppSpec, "apps/<app>/fleet.yaml"),
    "settings": (FleetSettings, "fleet.yaml"),
}


def schema_for(kind: str) -> dict[str, Any]:
    model, file = SCHEMAS[kind]
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"fleet {kind} ({file})"
    if kind == "app":
        # the app's name comes from its directory, so the file need not repeat it
        schema["required"] = [field for field in schema.get("required", []) if field != "name"]
    return schema
