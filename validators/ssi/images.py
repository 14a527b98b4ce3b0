"""Images: pixel bombs (read from the header, before any decoding), data after the end marker, and
markup or script hidden in comments and metadata chunks. PNG, JPEG and GIF are walked structure by
structure; other formats get their dimensions from Pillow's header parser (no pixel is decoded).

PNG's compressed ancillary chunks (iCCP colour profiles, zTXt and iTXt text) are inflated under a bound
per chunk and per image, as viewers do when the image is opened: past it the chunk is a decompression
bomb. What they inflate to is searched like the rest of a file (markup, executables, archives), since the
raw-byte search cannot see through the compression.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from validators import rules
from validators.base import CheckContext, CheckResult, ProofFile, Validator
from validators.imagefacts import MAX_CHUNK_INFLATE, PARSERS, Malformed, image_facts
from validators.model import CheckState, Finding
from validators.settings import EngineSettings
from validators.ssi.signatures import executable_kind, hidden_formats

MAX_PADDING = 16  # some encoders pad with a few zero bytes after the end marker
_MARKUP = re.compile(
    rb"<\s*script|<\?php|<%[@=]\s|javascript:|vbscript:|<\s*iframe|<\s*object|<\s*embed|<\s*html|on(?:load|error)\s*=",
    re.IGNORECASE,
)
IN_CHUNK = " in a compressed chunk of the image"  # ssi.executable's {where} for content of a compressed chunk


def _markup_hits(texts: list[tuple[str, bytes]]) -> Iterator[tuple[str, str]]:
    for where, text in texts:
        match = _MARKUP.search(text)
        if match is not None:
            yield where, match.group().decode("latin-1").lower()


def _hidden_in(content: bytes, where: str) -> list[Finding]:
    """Executables and archives in what a compressed chunk inflates to (invisible to the raw-byte search).

    The messages use fixed words (``IN_CHUNK``, "<chunk> (decompressed)") that the French report maps; the
    chunk and the kind go in the evidence."""
    found: list[Finding] = []
    kind = executable_kind(content[:4096])
    if kind is not None:
        found.append(rules.finding("ssi.executable", kind=kind, where=IN_CHUNK, evidence=f"{kind}, {where}"))
    families: set[str] = set()
    for hidden, offset in hidden_formats(content, 1):  # base 1: a format at the chunk's start counts too
        if hidden.family in families or (kind is not None and hidden.executable):
            continue
        families.add(hidden.family)
        found.append(
            rules.finding("ssi.polyglot", inner=hidden.kind, outer=f"{where} (decompressed)", offset=str(offset - 1))
        )
        if hidden.executable:
            found.append(rules.finding("ssi.executable", kind=hidden.executable_kind, where=IN_CHUNK,
                                       evidence=f"{hidden.executable_kind}, {where}"))
    return found


class ImagesValidator(Validator):
    name: ClassVar[str] = "ssi-image"
    rules: ClassVar[tuple[str, ...]] = (
        "ssi.image.bomb",
        "ssi.image.trailing-data",
        "ssi.image.markup",
        "ssi.image.unparsed",
        "ssi.image.chunk-bomb",
        "ssi.executable",
        "ssi.polyglot",
    )
    reads_settings: ClassVar[tuple[str, ...]] = ("image_max_megapixels",)
    reads_ruleset: ClassVar[tuple[str, ...]] = ()
    timeout: ClassVar[float] = 60.0

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.max_megapixels = EngineSettings.coerce(settings).image_max_megapixels

    def applies_to(self, file: ProofFile) -> bool:
        if file.media_type.startswith("image/") and file.media_type != "image/svg+xml":
            return True
        return any(file.head(16).startswith(magic) for magic, _ in PARSERS)

    @staticmethod
    def _unparsed(reason: str, detail: str | None = None) -> CheckResult:
        return CheckResult(
            findings=[rules.finding("ssi.image.unparsed", reason=reason)],
            state=CheckState.PARTIAL,
            detail=detail or reason,
        )

    def check(self, file: ProofFile, ctx: CheckContext) -> CheckResult:
        try:
            facts = image_facts(file)
        except (Malformed, struct.error, IndexError) as exc:
            # A broken structure is also the filetype check's call (format.*); here it means the end
            # marker and metadata were not reached, which the verdict must say.
            return self._unparsed(str(exc) if isinstance(exc, Malformed) else "truncated structure")
        except Exception as exc:  # Pillow's header parsers raise many types on hostile input
            if type(exc).__name__ == "DecompressionBombError":
                return CheckResult(
                    findings=[
                        rules.finding(
                            "ssi.image.bomb",
                            width="?",
                            height="?",
                            megapixels="over twice Pillow's limit",
                            limit=f"{self.max_megapixels:g}",
                        )
                    ]
                )
            return self._unparsed("header not readable", f"header not readable, {type(exc).__name__}")
        findings: list[Finding] = []
        megapixels = facts.width * facts.height * max(1, facts.frames) / 1e6
        if megapixels > self.max_megapixels:
            findings.append(
                rules.finding(
                    "ssi.image.bomb",
                    width=str(facts.width),
                    height=str(facts.height),
                    megapixels=f"{megapixels:.0f}",
                    limit=f"{self.max_megapixels:g}",
                    evidence=f"{facts.width}x{facts.height}x{facts.frames}",
                )
            )
        if facts.end is not None and facts.end < file.size:
            with file.open() as stream:
                stream.seek(facts.end)
                tail = stream.read(MAX_PADDING + 1)
            if len(tail) > MAX_PADDING or tail.strip(b"\0\r\n ") != b"":
                findings.append(
                    rules.finding(
                        "ssi.image.trailing-data", count=str(file.size - facts.end), marker=facts.marker
                    )
                )
        for where, pattern in sorted(set(_markup_hits(facts.texts))):
            findings.append(rules.finding("ssi.image.markup", chunk=where, pattern=pattern, evidence=pattern))
        for where in sorted(set(facts.bombs)):
            findings.append(rules.finding("ssi.image.chunk-bomb", chunk=where, limit=str(MAX_CHUNK_INFLATE)))
        for where, content in facts.inflated:
            ctx.check_time()
            findings += _hidden_in(content, where)
        return CheckResult(findings=findings)
