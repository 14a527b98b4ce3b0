"""Where value sets (JDV) come from: a folder, a local HTTP server or the NOS, read with limits.

A source is a base (folder path or http(s) URL). A value set named ``N`` is looked for, in order, at
``<base>/N.xml`` (SVS), ``<base>/N.json`` (FHIR) and ``<base>/N/N.xml`` (the NOS publication layout,
``https://mos.esante.gouv.fr/NOS/N/N.xml``). A missing candidate (404, no file) moves to the next one;
any other failure (timeout, connection reset, truncated body, over the size limit) stops the fetch:
a value set half received is never used.

``accept`` turns fetched bytes into a ``ValueSet`` and refuses what must not replace a good one: not
SVS/FHIR, another OID, no declared version, no concept, a version going backwards, the same declared
version with other content.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from validators.cda.valuesets import MAX_VALUESET_BYTES, ValueSet, ValueSetError, parse_fhir, parse_svs

NOS_BASE = "https://mos.esante.gouv.fr/NOS"
FETCH_TIMEOUT = 30.0
CHUNK = 256 * 1024


class ValueSetSourceError(RuntimeError):
    """A value set could not be fetched or must not be used; the message names why (never content)."""


@dataclass(frozen=True)
class Fetched:
    """The bytes of one value set as the source served them."""

    name: str
    data: bytes
    location: str  # the file or URL it was read from

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def candidates(name: str) -> tuple[str, ...]:
    return (f"{name}.xml", f"{name}.json", f"{name}/{name}.xml")


def _read_file(path: Path, max_bytes: int) -> bytes | None:
    if path.is_symlink() or not path.is_file():
        return None
    if path.stat().st_size > max_bytes:
        raise ValueSetSourceError(f"{path.name} is over the {max_bytes}-byte limit")
    with path.open("rb") as stream:
        data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueSetSourceError(f"{path.name} is over the {max_bytes}-byte limit")
    return data


def _read_url(url: str, timeout: float, max_bytes: int) -> bytes | None:
    """The body at ``url``; None on 404/410; ValueSetSourceError on anything else that went wrong."""
    request = urllib.request.Request(url, headers={"User-Agent": "proofcheck-valuesets-sync"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            declared = response.headers.get("Content-Length")
            chunks: list[bytes] = []
            total = 0
            while chunk := response.read(CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise ValueSetSourceError(f"{url} is over the {max_bytes}-byte limit")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):
            return None
        raise ValueSetSourceError(f"{url}: HTTP {exc.code}") from None
    except ValueSetSourceError:
        raise
    except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
        raise ValueSetSourceError(f"{url}: {type(exc).__name__}") from None
    data = b"".join(chunks)
    # http.client stops quietly at a closed connection: a body shorter than announced is a cut download.
    if declared is not None and declared.isdigit() and int(declared) != len(data):
        raise ValueSetSourceError(f"{url}: download cut short ({len(data)} of {declared} bytes)")
    return data


def fetch(source: str, name: str, *, timeout: float = FETCH_TIMEOUT, max_bytes: int = MAX_VALUESET_BYTES) -> Fetched:
    """The value set ``name`` from ``source`` (folder or base URL)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueSetSourceError(f"not a value set name: {name!r}")
    for relative in candidates(name):
        if is_url(source):
            url = source.rstrip("/") + "/" + urllib.parse.quote(relative)
            data = _read_url(url, timeout, max_bytes)
            where = url
        else:
            folder = Path(source).expanduser()
            if not folder.is_dir():
                raise ValueSetSourceError(f"no such folder: {source}")
            path = folder / relative
            data = _read_file(path, max_bytes)
            where = str(path)
        if data is not None:
            return Fetched(name, data, where)
    raise ValueSetSourceError(f"{name} is not published at {source}")


def parse(data: bytes) -> ValueSet:
    """SVS XML or FHIR JSON, chosen by content; ValueSetSourceError for anything else."""
    head = data.lstrip()[:1]
    try:
        if head == b"{":
            return parse_fhir(data)
        if head == b"<":
            return parse_svs(data)
    except ValueSetError as exc:
        raise ValueSetSourceError(str(exc)) from None
    raise ValueSetSourceError("neither SVS XML nor FHIR JSON")


def content_digest(valueset: ValueSet) -> str:
    """sha256 of the OID and the sorted concepts: the same content in SVS or FHIR gives one digest."""
    outer = hashlib.sha256(valueset.oid.encode("utf-8") + b"\0")
    for (system, code), display in sorted(valueset.concepts.items()):
        outer.update(f"{system}\0{code}\0{display}\n".encode())
    return outer.hexdigest()


def version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Declared versions compared by their numbers (``20240927120000``, ``1.14.0``), text as a tie-break."""
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in re.findall(r"\d+|[^\d.\-_]+", version))


@dataclass(frozen=True)
class Accepted:
    valueset: ValueSet
    digest: str
    changed: bool  # False: the same declared version and content as the one in force


def accept(fetched: Fetched, current: ValueSet | None, *, expected_oid: str | None) -> Accepted:
    """Decide whether ``fetched`` may replace ``current`` (the value set in force, if any)."""
    valueset = parse(fetched.data)
    if expected_oid and valueset.oid != expected_oid:
        raise ValueSetSourceError(f"{fetched.name}: OID {valueset.oid or '(none)'} instead of {expected_oid}")
    if not valueset.version:
        raise ValueSetSourceError(f"{fetched.name}: no declared version")
    if not valueset.concepts:
        raise ValueSetSourceError(f"{fetched.name} version {valueset.version} holds no concept")
    digest = content_digest(valueset)
    if current is None:
        return Accepted(valueset, digest, True)
    old, new = version_key(current.version), version_key(valueset.version)
    same_content = digest == content_digest(current)
    if new < old:
        raise ValueSetSourceError(
            f"{fetched.name}: version {valueset.version} is older than {current.version} in force"
        )
    if new == old:
        if same_content:
            return Accepted(valueset, digest, False)
        raise ValueSetSourceError(
            f"{fetched.name}: version {valueset.version} is the one in force but its content differs"
        )
    return Accepted(valueset, digest, True)


def to_svs(valueset: ValueSet, description: str = "") -> bytes:
    """The value set as IHE SVS XML (the form the CI-SIS Schematrons and the J66 loader read)."""
    from xml.sax.saxutils import quoteattr

    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<RetrieveValueSetResponse xmlns="urn:ihe:iti:svs:2008">',
        f"  <ValueSet id={quoteattr(valueset.oid)} version={quoteattr(valueset.version)}"
        f" displayName={quoteattr(valueset.name)} description={quoteattr(description)}>",
        "    <ConceptList>",
    ]
    for (system, code), display in sorted(valueset.concepts.items()):
        lines.append(
            f"      <Concept code={quoteattr(code)} codeSystem={quoteattr(system)} displayName={quoteattr(display)}/>"
        )
    lines += ["    </ConceptList>", "  </ValueSet>", "</RetrieveValueSetResponse>", ""]
    return "\n".join(lines).encode("utf-8")
