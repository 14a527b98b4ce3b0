"""Read the optional package manifest (``manifest.yaml`` / ``manifest.json``) safely and validate it.

The manifest is publisher input, so hostile: it is size-limited, parsed without YAML aliases or tags (no
"billion laughs"), depth- and node-limited, then checked against ``schemas/manifest.schema.json``.
Any problem is one ``package.manifest-invalid`` finding that says where (never a traceback, never
the manifest's content), and the manifest is then ignored as a whole.

Format (the schema is the reference)::

    referential: REM-MDV-LGC-SF-Va1      # default when absent
    publisher: Éditeur Démo SAS
    software: CabinetDémo
    version: "4.2"
    profiles: [Général, Médecin traitant]  # Général is always applied
    complete: true                         # the submission is declared complete
    proofs:                                # proof id (any written form) -> files
      INS.41.2.2: [captures/appel_traits.png]
      DOC 3.1.2:
        files: [DOC.3.1.2/]                # trailing "/": every file under that folder
        comment: free text
    comments: free text, or a list of texts
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import cache
from pathlib import PurePosixPath
from typing import Any

import jsonschema
import yaml

from validators import rules, schemas
from validators.model import Finding, Location

MANIFEST_NAMES = ("manifest.yaml", "manifest.yml", "manifest.json")
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_DEPTH = 20
MAX_NODES = 200_000
SCHEMA_NAME = "manifest.schema.json"  # in the top-level schemas/, installed as validators.schemas


class ManifestError(Exception):
    """A manifest that cannot be used; ``where`` points into it (``line 3``, ``/proofs/INS.1.1.1``)."""

    def __init__(self, where: str, problem: str, line: int | None = None) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem
        self.line = line


@dataclass(frozen=True)
class ManifestProof:
    key: str  # the proof id as the publisher wrote it
    files: tuple[str, ...]
    comment: str | None = None


@dataclass(frozen=True)
class Manifest:
    path: str
    referential: str | None = None
    publisher: str | None = None
    software: str | None = None
    version: str | None = None
    profiles: tuple[str, ...] | None = None
    complete: bool = False
    proofs: tuple[ManifestProof, ...] = ()
    comments: tuple[str, ...] = field(default=())


def is_manifest(path: str) -> bool:
    """Whether ``path`` is a manifest at the package root (or under the single top folder)."""
    parts = PurePosixPath(path).parts
    return len(parts) <= 2 and parts[-1].lower() in MANIFEST_NAMES


class _ManifestLoader(yaml.SafeLoader):
    """SafeLoader without aliases, with depth/node limits and duplicate keys refused."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ManifestError(_line(event), "YAML aliases are not accepted", event.start_mark.line + 1)
        event = self.peek_event()
        if getattr(event, "tag", None) not in (None, "!"):
            # An explicit tag (!!timestamp, !!bool...) makes PyYAML's constructors raise plain Python
            # errors on values they do not expect; a manifest never needs one.
            raise ManifestError(_line(event), "YAML tags are not accepted", event.start_mark.line + 1)
        self._nodes += 1
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH or self._nodes > MAX_NODES:
                event = self.peek_event()
                raise ManifestError(_line(event), "nested too deeply or too large", event.start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ManifestError(_line(key_node), "a key is a list or a mapping", key_node.start_mark.line + 1)
            key = key_node.value
            if key in seen:
                raise ManifestError(_line(key_node), "a key is repeated", key_node.start_mark.line + 1)
            seen.add(key)
        mapping = super().construct_mapping(node, deep=deep)
        # The schema matches keys as text (a number, date or boolean key made jsonschema raise TypeError).
        return {key if isinstance(key, str) else str(key): value for key, value in mapping.items()}


def _line(item: Any) -> str:
    return f"line {item.start_mark.line + 1}"


_UNREADABLE_VALUE = "a value cannot be read (a date or a number out of range)"


def _parse(name: str, raw: bytes) -> Any:
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError("file", "over the size limit")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"byte {exc.start}", "not UTF-8 text") from None
    if name.lower().endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"line {exc.lineno}", "not valid JSON", exc.lineno) from None
        except RecursionError:
            raise ManifestError("file", "nested too deeply") from None
        except ValueError:  # e.g. an integer of more than 4300 digits (Python's conversion limit)
            raise ManifestError("file", _UNREADABLE_VALUE) from None
    try:
        return yaml.load(text, Loader=_ManifestLoader)  # noqa: S506 - SafeLoader subclass, aliases refused
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ManifestError(f"line {line}" if line else "file", "not valid YAML", line) from None
    except yaml.YAMLError:
        raise ManifestError("file", "not valid YAML") from None
    except ValueError:  # PyYAML's constructors: a date such as 2024-13-45, a 5000-digit integer
        raise ManifestError("file", _UNREADABLE_VALUE) from None


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = schemas.load(SCHEMA_NAME)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _pointer(path: Any) -> str:
    return "/" + "/".join(str(p)[:100] for p in path) if path else "/"


def _problem(error: jsonschema.ValidationError) -> str:
    # Built from the schema, never from the manifest's values (they may hold anything).
    keyword = error.validator
    if keyword == "required":
        return "a required field is missing"
    if keyword == "additionalProperties":
        return "unknown field (see the manifest format)"
    if keyword == "type":
        return f"expected {error.validator_value}"
    if keyword in {"maxLength", "maxItems", "maxProperties"}:
        return f"over the limit of {error.validator_value}"
    if keyword in {"minLength", "minItems"}:
        return "empty"
    if keyword == "not":
        return "path must be relative, '/'-separated and stay inside the package"
    if keyword == "oneOf":
        return "expected a list of files or an object with 'files'"
    return f"fails the schema's '{keyword}' constraint"


def _validate(data: Any) -> None:
    # best_match descends into oneOf branches, so the error points at the offending item itself.
    first = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if first is not None:
        raise ManifestError(_pointer(first.absolute_path), _problem(first))


def _as_manifest(path: str, data: dict[str, Any]) -> Manifest:
    proofs = []
    for key, entry in (data.get("proofs") or {}).items():
        if isinstance(entry, dict):
            proofs.append(ManifestProof(str(key), tuple(entry.get("files", ())), entry.get("comment")))
        else:
            proofs.append(ManifestProof(str(key), tuple(entry)))
    comments = data.get("comments")
    version = data.get("version")
    return Manifest(
        path=path,
        referential=data.get("referential"),
        publisher=data.get("publisher"),
        software=data.get("software"),
        version=str(version) if version is not None else None,
        profiles=tuple(data["profiles"]) if "profiles" in data else None,
        complete=bool(data.get("complete", False)),
        proofs=tuple(proofs),
        comments=(comments,) if isinstance(comments, str) else tuple(comments or ()),
    )


def parse_manifest(path: str, raw: bytes) -> Manifest:
    """The manifest in ``raw``; raises ``ManifestError`` (where + problem) when it cannot be used."""
    data = _parse(path, raw)
    if data is None:
        data = {}
    _validate(data)
    return _as_manifest(path, data)


def load_manifest(path: str, read_file: Callable[[str], bytes]) -> tuple[Manifest | None, list[Finding]]:
    """The manifest, or None and the findings that say why it was ignored."""
    location = Location(entry=path)
    try:
        raw = read_file(path)
    except Exception as exc:  # the intake's reader may fail in any way: report, never crash
        return None, [rules.finding("package.manifest-invalid", location, manifest=path, where="file",
                                    problem="cannot be read", evidence=exc.__class__.__name__)]
    try:
        return parse_manifest(path, raw), []
    except ManifestError as exc:
        where = Location(entry=path, line=exc.line)
        return None, [rules.finding("package.manifest-invalid", where, manifest=path, where=exc.where,
                                    problem=exc.problem)]
    except (OSError, jsonschema.SchemaError) as exc:
        return None, [rules.finding("system.check-not-run", location, check="manifest",
                                    reason="the manifest schema is unavailable", evidence=exc.__class__.__name__)]


__all__ = [
    "MANIFEST_NAMES",
    "MAX_MANIFEST_BYTES",
    "Manifest",
    "ManifestError",
    "ManifestProof",
    "is_manifest",
    "load_manifest",
    "parse_manifest",
]
