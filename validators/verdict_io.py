"""The one reader of stored verdict documents: JSON bytes back to the typed ``PackageVerdict``.

``read_verdict`` validates a document against ``schemas/verdict.schema.json``, upgrades an older shape
of the same schema version (findings stored before they kept their message parameters), builds the model,
and checks that the model says what the document says: every status, the quarantine flag and the summary
are recomputed from the findings and compared. A document that fails any step is refused with a
``VerdictDocumentError`` naming the place and the problem; nothing is ever half-read.

The pipeline sections stored beside the contract (``object``, ``checked``, ``revalidation``,
``attestation``, ``chain``...) are kept as read, in their order, with typed views of those the pipeline
reads, so ``StoredVerdict.to_bytes`` gives back the stored bytes. A read is for reading: a stored verdict
is signed as it is and never rewritten; a new verdict made from an old one is a new document.
"""

from __future__ import annotations

import copy
import json
import re
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any

import fastjsonschema

from validators import rules, schemas
from validators.model import FileVerdict, Finding, PackageInfo, PackageVerdict, ParamValue, ProofVerdict, Provenance
from validators.report.json_report import SCHEMA_VERSION, document_bytes, to_document

# Stored verdicts are a few hundred KB; anything far larger is not one of ours (and would cost the
# reader its memory).
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
# The keys ``json_report.to_document`` writes: what the model carries. Any other top-level key is a
# pipeline section, kept as stored.
CONTRACT_KEYS = frozenset(
    ("schema_version", "package", "status", "quarantine", "summary", "ruleset", "antivirus", "engine",
     "proofs", "unmapped_files", "package_findings")
)
# What an older document of schema version 1 lacks, in the words ``StoredVerdict.upgraded`` uses.
UPGRADE_PARAMS = "findings without message parameters"
_MAX_PARSED_MESSAGE = 2000  # longer messages are not parsed back into parameters (regex cost)


class VerdictDocumentError(ValueError):
    """A stored verdict document that cannot be read as a whole: broken, of an unknown schema, inconsistent.

    ``where`` is a path in the document (``proofs[0].files[2].status``), "" for the document as a whole.
    """

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        place = f" at {where}" if where else ""
        super().__init__(f"verdict document refused{place}: {problem}")


# -- the pipeline sections, typed views ------------------------------------------------------------------


@dataclass(frozen=True)
class StoredObject:
    """``object``: the S3 object the verdict was computed from, and where and when it was stored."""

    key: str
    bucket: str | None = None
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    uploaded_at: str | None = None
    area: str | None = None
    publisher: str | None = None
    stored_at: str | None = None


@dataclass(frozen=True)
class Checked:
    """``checked``: whether every check ran when the verdict was stored, and the reconcile's schedule."""

    in_full: bool
    not_run: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    attempt: int | None = None
    next_try_after: str | None = None


@dataclass(frozen=True)
class RevalidationRecord:
    """``revalidation``: the verdict this one replaced under a newer ruleset, and the run's change report."""

    run: str
    mode: str
    reason: str
    report: str
    previous_json_key: str | None = None
    previous_status: str | None = None
    previous_ruleset: str | None = None


# -- the stored verdict ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredVerdict:
    """A verdict document as read: the typed verdict, its pipeline sections (read-only) and their order."""

    verdict: PackageVerdict
    sections: Mapping[str, Any]  # top-level keys other than the contract's, values frozen as read
    order: tuple[str, ...] = ()  # top-level keys in stored order
    upgraded: tuple[str, ...] = ()  # what the reader upgraded (UPGRADE_PARAMS...), () for a current document

    @classmethod
    def new(cls, verdict: PackageVerdict, **sections: Any) -> StoredVerdict:
        """A verdict about to be stored with these pipeline sections (written after the contract)."""
        frozen = {name: freeze(value) for name, value in sections.items() if value is not None}
        return cls(verdict, MappingProxyType(frozen), (*to_document(verdict), *frozen))

    def with_section(self, name: str, value: Any) -> StoredVerdict:
        """The same with the section ``name`` set (appended after the others when new)."""
        sections = {**self.sections, name: freeze(value)}
        order = self.order if name in self.order else (*self.order, name)
        return StoredVerdict(self.verdict, MappingProxyType(sections), order, self.upgraded)

    @property
    def object(self) -> StoredObject | None:
        section = self.sections.get("object")
        if not isinstance(section, Mapping) or not section.get("key"):
            return None
        fields = StoredObject.__dataclass_fields__
        return StoredObject(**{k: v for k, v in section.items() if k in fields})

    @property
    def checked(self) -> Checked | None:
        section = self.sections.get("checked")
        if not isinstance(section, Mapping):
            return None
        return Checked(
            in_full=bool(section.get("in_full")),
            not_run=tuple(section.get("not_run") or ()),
            rules=tuple(section.get("rules") or ()),
            attempt=section.get("attempt"),
            next_try_after=section.get("next_try_after"),
        )

    @property
    def revalidation(self) -> RevalidationRecord | None:
        section = self.sections.get("revalidation")
        if not isinstance(section, Mapping) or not section.get("report"):
            return None
        previous = section.get("previous") or {}
        return RevalidationRecord(
            run=str(section.get("run", "")),
            mode=str(section.get("mode", "")),
            reason=str(section.get("reason", "")),
            report=str(section["report"]),
            previous_json_key=previous.get("json_key"),
            previous_status=previous.get("status"),
            previous_ruleset=previous.get("ruleset"),
        )

    @property
    def area(self) -> str | None:
        stored = self.object
        return stored.area if stored else None

    def to_document(self) -> dict[str, Any]:
        """The document again: the contract written from the model, the sections as read, in stored order."""
        contract = to_document(self.verdict)
        out: dict[str, Any] = {}
        for key in self.order:
            if key in contract:
                out[key] = contract[key]
            elif key in self.sections:
                out[key] = thaw(self.sections[key])
        for key, value in contract.items():
            out.setdefault(key, value)
        for key, value in self.sections.items():
            out.setdefault(key, thaw(value))
        return out

    def to_bytes(self) -> bytes:
        """The stored bytes of a current document (an upgraded one gets its parameters written out)."""
        return document_bytes(self.to_document())


def freeze(value: Any) -> Any:
    """A JSON value made read-only (mappings as proxies, lists as tuples)."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The plain JSON value of a ``freeze``-d one."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


# -- reading ---------------------------------------------------------------------------------------------


def read_verdict(data: bytes | str | Mapping[str, Any]) -> StoredVerdict:
    """The stored verdict in ``data`` (JSON bytes or text, or an already parsed document).

    Raises ``VerdictDocumentError`` (a ``ValueError``) when it is not a whole, consistent verdict document
    of a schema version this proofcheck reads.
    """
    doc = _parse(data) if isinstance(data, bytes | str) else _copy(data)
    if not isinstance(doc, dict):
        raise VerdictDocumentError("", f"a verdict document is a JSON object, not {_json_type(doc)}")
    version = doc.get("schema_version")
    if version is None:
        raise VerdictDocumentError("schema_version", "missing: not a proofcheck verdict document")
    if version != SCHEMA_VERSION:
        raise VerdictDocumentError(
            "schema_version", f"{_shown(version)} is not a version this proofcheck reads ({SCHEMA_VERSION})"
        )
    try:
        _validate(doc)
        upgraded = _upgrade(doc)
        verdict = _verdict(doc)
        _check_consistent(doc, to_document(verdict))
        sections = {k: freeze(v) for k, v in doc.items() if k not in CONTRACT_KEYS}
    except RecursionError:  # files inside files, far deeper than the engine ever nests them
        raise VerdictDocumentError("", "nested too deeply to be a verdict") from None
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, VerdictDocumentError):
            raise
        # The schema should have caught it: refuse all the same, never half-read.
        raise VerdictDocumentError("", f"cannot be read as a verdict ({type(exc).__name__})") from None
    return StoredVerdict(verdict, MappingProxyType(sections), tuple(doc), upgraded)


def read_verdict_file(path: str) -> StoredVerdict:
    """``read_verdict`` of a file, refusing one larger than ``MAX_DOCUMENT_BYTES`` before reading it."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_DOCUMENT_BYTES + 1)
    return read_verdict(data)


def _parse(data: bytes | str) -> Any:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise VerdictDocumentError("", f"larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise VerdictDocumentError("", f"not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except UnicodeDecodeError:
        raise VerdictDocumentError("", "not UTF-8 text") from None
    except RecursionError:
        raise VerdictDocumentError("", "nested too deeply to be a verdict") from None


def _copy(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A parsed document copied, so that upgrading it never touches the caller's."""
    try:
        return copy.deepcopy(dict(doc))
    except RecursionError:
        raise VerdictDocumentError("", "nested too deeply to be a verdict") from None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number"}
    return "null" if value is None else names.get(type(value), "a number")


def _shown(value: Any) -> str:
    """A stored value quoted in an error: short words and small numbers only.

    An error message goes to logs; a long string or a long number (a NIR is 13 to 15 digits) is named
    by its type, never quoted.
    """
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float) and len(str(value)) <= 6:
        return str(value)
    if isinstance(value, str) and len(value) <= 40 and sum(c.isdigit() for c in value) <= 6:
        return repr(value)
    return _json_type(value)


def path_of(parts: Any) -> str:
    """``["proofs", 0, "files", 2]`` -> ``proofs[0].files[2]``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@cache
def _validator() -> Callable[[Any], Any]:
    """The verdict schema compiled once per process.

    fastjsonschema rather than jsonschema: a stored verdict of a thousand findings is checked in tens of
    milliseconds instead of half a second (every index rebuild reads every stored verdict). The schema
    uses only keywords that mean the same in its draft 2020-12 and in fastjsonschema's draft 7 (type,
    required, properties, $ref to $defs, enum, const, pattern, items, min/max); a test keeps the two
    libraries in agreement on it. Its messages name the path and the rule, never the value found.
    """
    return fastjsonschema.compile(schemas.load("verdict.schema.json"))


def _validate(doc: dict[str, Any]) -> None:
    try:
        _validator()(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        name = exc.name or "data"
        where = name[len("data") :].lstrip(".") if name.startswith("data") else name
        problem = exc.message[len(name) :].strip() if exc.message.startswith(name) else exc.message
        raise VerdictDocumentError(_short(where), _short(problem)) from None
    except fastjsonschema.JsonSchemaException:
        raise VerdictDocumentError("", "cannot be checked against the verdict schema") from None


def _short(text: str, limit: int = 200) -> str:
    """An error's part cut to a readable length (paths may hold long keys)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- upgrading an older shape -----------------------------------------------------------------------------


def walk_files(files: Any) -> Iterator[Mapping[str, Any]]:
    """File entries of a verdict document's file list and, depth first, the files found inside them."""
    for file in files or []:
        yield file
        yield from walk_files(file.get("children"))


def iter_document_findings(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every finding entry of a (schema-valid) document, children included, in document order."""

    def files(entries: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for entry in entries:
            yield entry
            yield from files(entry.get("children") or [])

    yield from doc["package_findings"]
    for proof in doc["proofs"]:
        yield from proof.get("findings") or []
        for entry in files(proof["files"]):
            yield from entry["findings"]
    for entry in files(doc["unmapped_files"]):
        yield from entry["findings"]


def _upgrade(doc: dict[str, Any]) -> tuple[str, ...]:
    """Bring a schema-1 document written before findings kept their parameters to the current shape.

    The parameters are parsed back from the English message with the rule's template (when the rule is
    still catalogued with the same wording and the reading is unambiguous), and the French message is
    rendered from them; otherwise the finding keeps no parameters and no French message (readers then
    show the English one).
    """
    upgraded = False
    for finding in iter_document_findings(doc):
        if "params" in finding:
            continue
        upgraded = True
        params = parse_params(finding["rule"], finding["message"])
        finding["params"] = params or {}
        rule = _known_rule(finding["rule"])
        finding["message_fr"] = rules.french(rule, params) if rule is not None and params is not None else None
    return (UPGRADE_PARAMS,) if upgraded else ()


def _known_rule(rule_id: str) -> rules.Rule | None:
    try:
        return rules.get(rule_id)
    except rules.UnknownRuleError:
        return None


def parse_params(rule_id: str, message: str) -> dict[str, ParamValue] | None:
    """The parameters that render ``message`` from the rule's English template, or None if not one reading.

    Values come back as text. Used only to upgrade documents stored before findings kept parameters.
    """
    rule = _known_rule(rule_id)
    if rule is None or len(message) > _MAX_PARSED_MESSAGE:
        return None
    lazy, greedy = _template_patterns(rule.message)
    if lazy is None or greedy is None:
        return None
    first, second = lazy.fullmatch(message), greedy.fullmatch(message)
    if first is None or second is None or first.groupdict() != second.groupdict():
        return None  # no reading, or two: leave it unparsed rather than guess
    params: dict[str, ParamValue] = dict(first.groupdict())
    return params if rules.render(rule.message, params) == message else None


@cache
def _template_patterns(template: str) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    built: list[re.Pattern[str] | None] = []
    for quantifier in ("*?", "*"):
        pattern, seen = "", set()
        for literal, name, spec, conversion in string.Formatter().parse(template):
            pattern += re.escape(literal)
            if name is None:
                continue
            if spec or conversion or not name.isidentifier():
                return None, None  # a formatted value cannot be read back as it was given
            pattern += f"(?P={name})" if name in seen else f"(?P<{name}>.{quantifier})"
            seen.add(name)
        built.append(re.compile(pattern, re.DOTALL))
    return built[0], built[1]


# -- building the model -----------------------------------------------------------------------------------


def _verdict(doc: dict[str, Any]) -> PackageVerdict:
    ruleset, engine = doc["ruleset"], doc["engine"]
    return PackageVerdict(
        package=PackageInfo.from_dict(doc["package"]),
        provenance=Provenance(
            ruleset_version=str(ruleset["version"]),
            components=tuple((str(k), str(v)) for k, v in ruleset["components"].items()),
            engine_version=str(engine["version"]),
            started_at=str(engine["started_at"]),
            finished_at=str(engine["finished_at"]),
            antivirus=tuple((str(k), str(v)) for k, v in (doc.get("antivirus") or {}).items()),
        ),
        proofs=tuple(ProofVerdict.from_dict(p) for p in doc["proofs"]),
        unmapped_files=tuple(FileVerdict.from_dict(f) for f in doc["unmapped_files"]),
        package_findings=tuple(Finding.from_dict(f) for f in doc["package_findings"]),
    )


def _check_consistent(stored: Any, derived: Any, where: tuple[Any, ...] = ()) -> None:
    """Refuse a document whose statuses, flags or counts are not what its findings and checks make them.

    Compares what the model writes back with what was stored. Keys only one side has are not compared:
    a field a newer writer added, or an optional one the model fills with its default (``children``).
    """
    if isinstance(derived, dict) and isinstance(stored, dict):
        for key, value in derived.items():
            if key in stored:
                _check_consistent(stored[key], value, (*where, key))
        return
    if isinstance(derived, list) and isinstance(stored, list) and len(derived) == len(stored):
        for index, (left, right) in enumerate(zip(stored, derived, strict=True)):
            _check_consistent(left, right, (*where, index))
        return
    if stored != derived or type(stored) is not type(derived):
        if where and where[-1] in ("status", "quarantine"):
            problem = f"stored {_shown(stored)}, but its findings and checks make it {_shown(derived)}"
        else:
            problem = f"stored {_shown(stored)} does not agree with the rest of the document ({_shown(derived)})"
        raise VerdictDocumentError(_short(path_of(where)), problem)


__all__ = [
    "CONTRACT_KEYS",
    "MAX_DOCUMENT_BYTES",
    "Checked",
    "RevalidationRecord",
    "StoredObject",
    "StoredVerdict",
    "VerdictDocumentError",
    "freeze",
    "iter_document_findings",
    "parse_params",
    "read_verdict",
    "read_verdict_file",
    "thaw",
]
