"""PDF active content: a walk of every object (object streams included) for scripts, actions and files.

Every indirect object listed by the cross-reference tables, including those packed in compressed object
streams (where ClamAV does not look), is read once and its direct content walked with an explicit stack,
so reference cycles cost nothing and nesting is bounded. A raw scan of the bytes and of the decompressed
object streams finds names written with ``#`` escapes to dodge scanners. Attached files become children.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pypdf import PasswordType, PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, StreamObject

from validators import rules
from validators.base import CheckContext, CheckResult, DeadlineExceededError, Embedded, ProofFile, Validator
from validators.model import Finding
from validators.settings import EngineSettings
from validators.ssi.links import classify, shown

MAX_DEPTH = 100  # direct nesting of arrays/dictionaries; real producers stay under ~10
MAX_OBJECTS = 2_000_000
MAX_EMBEDDED_FILES = 32
MAX_EMBEDDED_BYTES = 64 * 1024 * 1024
MAX_LINK_TARGETS = 20  # distinct dangerous link targets listed; the others are counted under "…"
_EVIDENCE_OBJECTS = 5

# Action types (PDF 32000-1:2008, 12.6.4) by what they do.
_EXTERNAL_ACTIONS = frozenset({"/SubmitForm", "/ImportData", "/GoToR", "/GoToE"})
_HARMLESS_AUTO_ACTIONS = frozenset({"/GoTo"})
_RICH_MEDIA_SUBTYPES = frozenset({"/RichMedia", "/3D", "/Movie", "/Sound", "/Flash"})
# Names a producer never needs to escape; escaping them is evasion.
_WATCHED_NAMES = frozenset(
    {
        "JavaScript",
        "JS",
        "OpenAction",
        "AA",
        "Launch",
        "EmbeddedFile",
        "EmbeddedFiles",
        "EF",
        "FileAttachment",
        "Filespec",
        "RichMedia",
        "XFA",
        "SubmitForm",
        "ImportData",
        "GoToR",
        "GoToE",
        "URI",
        "AcroForm",
        "Names",
        "ObjStm",
        "S",
        "Type",
        "Action",
    }
)
_ESCAPED_NAME = re.compile(
    rb"/((?:[A-Za-z0-9]|#[0-9A-Fa-f]{2}){0,40}#[0-9A-Fa-f]{2}(?:[A-Za-z0-9]|#[0-9A-Fa-f]{2}){0,40})"
)


def is_pdf(file: ProofFile) -> bool:
    """A PDF by type, by its header, or named .pdf with the header in its first KiB (readers accept that).

    "%PDF-" merely inside the first KiB of another file (a zip storing a PDF member) is not enough.
    """
    head = file.head(1024)
    return (
        file.media_type == "application/pdf"
        or head.startswith(b"%PDF-")
        or (file.extension == "pdf" and b"%PDF-" in head)
    )


def decode_name(raw: bytes) -> str:
    return re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m[1], 16)]), raw).decode("latin-1")


def escaped_dangerous_names(data: bytes | mmap.mmap) -> Iterator[tuple[str, str]]:
    """(decoded name, raw form) of every watched name written with #-escapes."""
    for match in _ESCAPED_NAME.finditer(data):
        name = decode_name(match[1])
        if name in _WATCHED_NAMES:
            yield name, match[1].decode("ascii")


@dataclass
class _Observations:
    """What the walk saw, grouped so that a PDF with 10 000 links gives one finding, not 10 000."""

    hits: dict[tuple[str, tuple[tuple[str, str], ...]], list[int]] = field(default_factory=dict)
    uri_count: int = 0
    embedded_streams: dict[int, str] = field(default_factory=dict)  # object number -> file name
    embedded_names: dict[int, str] = field(default_factory=dict)

    def add(self, rule_id: str, obj: int, **params: str) -> None:
        self.hits.setdefault((rule_id, tuple(sorted(params.items()))), []).append(obj)

    def findings(self) -> list[Finding]:
        out = []
        for (rule_id, params), objects in sorted(self.hits.items()):
            shown = ", ".join(str(n) for n in sorted(set(objects))[:_EVIDENCE_OBJECTS])
            more = len(set(objects)) - _EVIDENCE_OBJECTS
            evidence = f"object(s) {shown}" + (f" and {more} more" if more > 0 else "")
            fields: dict[str, Any] = dict(params)
            out.append(rules.finding(rule_id, evidence=evidence, **fields))
        if self.uri_count:
            out.append(rules.finding("ssi.pdf.uri", count=str(self.uri_count)))
        return out


class _TrapError(Exception):
    """The structure goes past a walk limit: ``detail`` in fixed words (the French report maps them), the
    numbers in ``evidence``."""

    def __init__(self, detail: str, evidence: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.evidence = evidence


def _raw(container: DictionaryObject, key: str) -> Any:
    """A dictionary value without resolving references (pypdf's [] resolves them)."""
    return dict.get(container, NameObject(key))


def _resolve(reader: PdfReader, value: Any) -> Any:
    return value.get_object() if isinstance(value, IndirectObject) else value


def _action_type(reader: PdfReader, value: Any) -> str | None:
    action = _resolve(reader, value)
    if isinstance(action, DictionaryObject):
        kind = _raw(action, "/S")
        return str(kind) if kind is not None else None
    return None  # a destination array: a plain "go to"


def _inspect(reader: PdfReader, obj_num: int, item: DictionaryObject, seen: _Observations) -> None:
    keys = {str(k) for k in item}
    action = str(_raw(item, "/S")) if "/S" in keys else None
    subtype = str(_raw(item, "/Subtype")) if "/Subtype" in keys else None
    if "/JS" in keys or action == "/JavaScript":
        seen.add("ssi.pdf.javascript", obj_num, where="action")
    if "/JavaScript" in keys:
        seen.add("ssi.pdf.javascript", obj_num, where="document-level script")
    if action == "/Launch":
        seen.add("ssi.pdf.launch", obj_num)
    elif action in _EXTERNAL_ACTIONS:
        seen.add("ssi.pdf.external-action", obj_num, action=action.lstrip("/"))
    elif action == "/URI":
        _note_uri(reader, item, obj_num, seen)
    elif action == "/RichMediaExecute":
        seen.add("ssi.pdf.rich-media", obj_num, kind="RichMediaExecute")
    if "/OpenAction" in keys:
        kind = _action_type(reader, _raw(item, "/OpenAction"))
        if kind is not None and kind not in _HARMLESS_AUTO_ACTIONS:
            seen.add("ssi.pdf.auto-action", obj_num, action=kind.lstrip("/"), trigger="OpenAction")
    if "/AA" in keys:
        triggers = _resolve(reader, _raw(item, "/AA"))
        if isinstance(triggers, DictionaryObject):
            for trigger, value in dict.items(triggers):
                kind = _action_type(reader, value)
                if kind is not None and kind not in _HARMLESS_AUTO_ACTIONS:
                    seen.add("ssi.pdf.auto-action", obj_num, action=kind.lstrip("/"), trigger=f"AA{trigger}")
    if subtype in _RICH_MEDIA_SUBTYPES or "/RichMediaContent" in keys:
        seen.add("ssi.pdf.rich-media", obj_num, kind=(subtype or "/RichMedia").lstrip("/"))
    if "/XFA" in keys:
        seen.add("ssi.pdf.xfa", obj_num)
    if subtype == "/FileAttachment":
        seen.add("ssi.pdf.embedded-file", obj_num, where="attachment annotation")
    if "/EmbeddedFiles" in keys:
        seen.add("ssi.pdf.embedded-file", obj_num, where="EmbeddedFiles name tree")
    if "/EF" in keys:
        _note_file_spec(reader, item, seen)
    if isinstance(item, StreamObject) and str(_raw(item, "/Type")) == "/EmbeddedFile":
        seen.embedded_streams.setdefault(obj_num, "")
        seen.add("ssi.pdf.embedded-file", obj_num, where="embedded file stream")


def _pdf_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        if value[:2] in (b"\xfe\xff", b"\xff\xfe"):
            return value.decode("utf-16", "replace")
        return value.decode("latin-1")
    return None


def _note_uri(reader: PdfReader, action: DictionaryObject, obj_num: int, seen: _Observations) -> None:
    """A URI action: a web link is information; javascript:, data:, file: and UNC targets are errors."""
    target = _pdf_text(_resolve(reader, _raw(action, "/URI")))
    danger = classify(target) if target is not None else None
    if target is None or danger is None:
        seen.uri_count += 1
        return
    listed = {dict(params).get("target") for rule_id, params in seen.hits if rule_id == "ssi.pdf.dangerous-link"}
    where = shown(target)
    if where not in listed and len(listed) >= MAX_LINK_TARGETS:
        where = "…"
    seen.add("ssi.pdf.dangerous-link", obj_num, scheme=danger.scheme, target=where)


def _note_file_spec(reader: PdfReader, spec: DictionaryObject, seen: _Observations) -> None:
    streams = _resolve(reader, _raw(spec, "/EF"))
    if not isinstance(streams, DictionaryObject):
        return
    name = _resolve(reader, _raw(spec, "/UF") or _raw(spec, "/F"))
    for ref in dict.values(streams):
        if isinstance(ref, IndirectObject):
            seen.embedded_names[ref.idnum] = str(name) if name is not None else ""


def _walk(reader: PdfReader, obj_num: int, root: Any, seen: _Observations) -> None:
    """Direct content of one object; references are not followed (each object is visited on its own)."""
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _TrapError("objects nested too deeply", f"more than {MAX_DEPTH} levels")
        if isinstance(item, DictionaryObject):
            _inspect(reader, obj_num, item, seen)
            stack.extend((value, depth + 1) for value in dict.values(item))
        elif isinstance(item, ArrayObject):
            stack.extend((value, depth + 1) for value in list.__iter__(item))


def _page_tree_cycle(reader: PdfReader) -> bool:
    """Whether following /Kids from the catalog's /Pages comes back to a node (readers that recurse hang)."""
    root = _resolve(reader, _raw(reader.trailer, "/Root"))
    if not isinstance(root, DictionaryObject):
        return False
    pending: list[tuple[Any, frozenset[int]]] = [(_raw(root, "/Pages"), frozenset())]
    visited: set[int] = set()
    while pending:
        ref, ancestors = pending.pop()
        if not isinstance(ref, IndirectObject):
            continue
        if ref.idnum in ancestors:
            return True
        if ref.idnum in visited:
            continue  # shared node: not a cycle, and not walked twice
        visited.add(ref.idnum)
        node = ref.get_object()
        kids = _resolve(reader, _raw(node, "/Kids")) if isinstance(node, DictionaryObject) else None
        if isinstance(kids, ArrayObject):
            pending.extend((kid, ancestors | {ref.idnum}) for kid in list.__iter__(kids))
    return False


def _object_ids(reader: PdfReader) -> list[tuple[int, int]]:
    ids = {(num, gen) for gen, table in reader.xref.items() for num in table}
    ids.update((num, 0) for num in reader.xref_objStm)
    return sorted(ids)


@contextmanager
def _content(file: ProofFile) -> Iterator[Any]:
    """The bytes, mapped read-only when on disk (a large PDF is not copied into memory)."""
    if file.data is not None or file.size == 0:
        yield file.read()
        return
    with file.open() as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        yield mapped


class PdfValidator(Validator):
    name: ClassVar[str] = "ssi-pdf"
    rules: ClassVar[tuple[str, ...]] = (
        "ssi.pdf.javascript",
        "ssi.pdf.auto-action",
        "ssi.pdf.launch",
        "ssi.pdf.embedded-file",
        "ssi.pdf.rich-media",
        "ssi.pdf.xfa",
        "ssi.pdf.external-action",
        "ssi.pdf.uri",
        "ssi.pdf.dangerous-link",
        "ssi.pdf.obfuscated-name",
        "ssi.pdf.encrypted",
        "ssi.pdf.parser-trap",
        "ssi.pdf.unreadable",
    )
    reads_settings: ClassVar[tuple[str, ...]] = ("pdf_max_bytes",)
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 120.0

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.max_bytes = EngineSettings.coerce(settings).pdf_max_bytes

    def applies_to(self, file: ProofFile) -> bool:
        return is_pdf(file)

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        if file.size > self.max_bytes:
            return CheckResult(findings=[rules.finding(
                "ssi.pdf.parser-trap", detail="the file is over the inspection size limit",
                evidence=f"{file.size} bytes, limit {self.max_bytes}",
            )])
        with _content(file) as data:
            findings = [
                rules.finding("ssi.pdf.obfuscated-name", name=name, raw=raw, evidence=f"/{raw}")
                for name, raw in sorted(set(escaped_dangerous_names(data)))
            ]
            try:
                reader = PdfReader(_as_stream(data), strict=False)
                return self._inspect_reader(reader, ctx, findings)
            except DeadlineExceededError:
                raise
            except RecursionError:
                findings.append(rules.finding("ssi.pdf.parser-trap", detail="the parser recursed without end"))
            except NotImplementedError:  # pypdf opening a PDF whose encryption handler it lacks
                findings.append(rules.finding("ssi.pdf.encrypted", detail="unsupported encryption handler"))
            except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError, IndexError) as exc:
                # pypdf raises a zoo of exception types on hostile input: all mean "not inspected".
                findings.append(rules.finding("ssi.pdf.unreadable", error=type(exc).__name__))
            return CheckResult(findings=findings)

    def _inspect_reader(self, reader: PdfReader, ctx: CheckContext, findings: list[Finding]) -> CheckResult:
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # an owner-password-only PDF opens (and is inspected) as is
            except (PyPdfError, NotImplementedError, ValueError) as exc:
                findings.append(
                    rules.finding("ssi.pdf.encrypted", detail="unsupported encryption", evidence=type(exc).__name__)
                )
                return CheckResult(findings=findings)
            if opened == PasswordType.NOT_DECRYPTED:
                findings.append(rules.finding("ssi.pdf.encrypted", detail="a password is needed to open it"))
                return CheckResult(findings=findings)
        seen = _Observations()
        ids = _object_ids(reader)
        if len(ids) > MAX_OBJECTS:
            findings.append(rules.finding(
                "ssi.pdf.parser-trap", detail="too many objects", evidence=f"{len(ids)} objects, limit {MAX_OBJECTS}"
            ))
            return CheckResult(findings=findings)
        unreadable = 0
        try:
            _walk(reader, 0, reader.trailer, seen)
            for count, (num, gen) in enumerate(ids):
                if count % 256 == 0:
                    ctx.check_time()
                try:
                    obj = reader.get_object(IndirectObject(num, gen, reader))
                except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError):
                    unreadable += 1
                    continue
                _walk(reader, num, obj, seen)
            self._scan_object_streams(reader, findings, ctx)
            if _page_tree_cycle(reader):
                raise _TrapError("the page tree contains a cycle")
        except _TrapError as exc:
            findings.append(rules.finding("ssi.pdf.parser-trap", detail=exc.detail, evidence=exc.evidence))
        if unreadable:
            findings.append(rules.finding(
                "ssi.pdf.unreadable", error="some objects could not be parsed", evidence=f"{unreadable} object(s)"
            ))
        findings.extend(seen.findings())
        children, limited = self._embedded(reader, seen)
        if limited:
            where, evidence = limited
            findings.append(rules.finding("ssi.pdf.embedded-file", where=where, evidence=evidence))
        return CheckResult(findings=findings, children=children)

    @staticmethod
    def _scan_object_streams(reader: PdfReader, findings: list[Finding], ctx: CheckContext) -> None:
        """Escaped names inside compressed object streams, invisible to a scan of the raw bytes."""
        for stream_num in sorted({entry[0] for entry in reader.xref_objStm.values()}):
            ctx.check_time()
            stream = reader.get_object(stream_num)
            if not isinstance(stream, StreamObject):
                continue
            for name, raw in sorted(set(escaped_dangerous_names(stream.get_data()))):
                findings.append(rules.finding("ssi.pdf.obfuscated-name", name=name, raw=raw, evidence=f"/{raw}"))

    @staticmethod
    def _embedded(reader: PdfReader, seen: _Observations) -> tuple[list[Embedded], tuple[str, str] | None]:
        """The attached files as children, and (why, evidence) when some were not checked."""
        children: list[Embedded] = []
        total = 0
        numbers = sorted(set(seen.embedded_streams) | set(seen.embedded_names))
        for num in numbers:
            if len(children) >= MAX_EMBEDDED_FILES:
                return children, ("too many attached files; the rest were not checked",
                                  f"more than {MAX_EMBEDDED_FILES} files")
            try:
                stream = reader.get_object(num)
                data = stream.get_data() if isinstance(stream, StreamObject) else None
            except (PyPdfError, ValueError, KeyError, TypeError, OSError):
                return children, ("an attached file could not be decoded; it and the rest were not checked",
                                  f"object {num}")
            if data is None:
                continue
            total += len(data)
            if total > MAX_EMBEDDED_BYTES:
                return children, ("attached files too large; the rest were not checked",
                                  f"over {MAX_EMBEDDED_BYTES} bytes")
            name = seen.embedded_names.get(num) or f"attachment-{num}"
            children.append(Embedded(name=name, data=data, origin="pdf:EmbeddedFile"))
        return children, None


def _as_stream(data: Any) -> Any:
    import io

    return io.BytesIO(data) if isinstance(data, bytes) else data
