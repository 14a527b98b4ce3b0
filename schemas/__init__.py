"""JSON Schemas the project owns (verdict, manifest), installed as ``validators.schemas``."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load(name: str) -> dict[str, Any]:
    """A schema by file name, e.g. ``load("verdict.schema.json")``."""
    text = resources.files(__name__).joinpath(name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
