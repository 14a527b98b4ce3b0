"""``proofcheck rulesets sync --from DIR_OR_URL``: import an ANS TestContenuCDA-like tree as a new version.

Steps: fetch (a folder, or a zip over HTTP(S) with a timeout and a size limit), copy the three folders
the checks use (``infrastructure/cda``, ``jeuxDeValeurs``, ``schematrons``) with limits, digest the
content, repair the known defects (``repair.py``), compile every Schematron once (``compiler.py``),
write the manifest with components and gaps, then publish atomically. The same content synced twice is
the same version: the second sync reuses it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import shutil
import tempfile
import threading
import time
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from lxml import etree

from validators.cda import profiles, valuesets, voletmap
from validators.cda.compiler import SchematronCompileError, SchematronCompiler
from validators.cda.repair import closure, repair_tree
from validators.cda.store import RulesetStore, RulesetVersion, version_name
from validators.cda.volet_choice import coverage

log = logging.getLogger(__name__)

DEFAULT_URL = "https://github.com/ansforge/TestContenuCDA-3-0/archive/refs/heads/main.zip"
FOLDERS = ("infrastructure/cda", "jeuxDeValeurs", "schematrons")
EXAMPLES = "ExemplesCDA"  # read at sync (templateIds of the reference examples), never copied
XSD_PATH = "infrastructure/cda/CDA_extended.xsd"
MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
MAX_FILE_BYTES = 256 * 1024 * 1024
MAX_FILES = 20_000
MAX_TREE_BYTES = 2 * 1024 * 1024 * 1024
DOWNLOAD_TIMEOUT = 60.0
TOTAL_DOWNLOAD_TIMEOUT = 900.0


class SyncError(RuntimeError):
    """The source cannot be imported (unreachable, not a ruleset tree, over a limit)."""


@dataclass(frozen=True)
class SyncResult:
    version: RulesetVersion
    reused: bool
    seconds: float


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def download(
    url: str,
    target: Path,
    *,
    timeout: float = DOWNLOAD_TIMEOUT,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    total_timeout: float = TOTAL_DOWNLOAD_TIMEOUT,
) -> Path:
    """Fetch ``url`` to ``target``, refusing more than ``max_bytes`` (counted, not trusted from headers).

    ``timeout`` bounds each network operation; ``total_timeout`` the whole download, name resolution
    included (a resolver that hangs, or a server that trickles bytes, still ends in a SyncError)."""
    if not _is_url(url):
        raise SyncError("only http(s) URLs are fetched")
    outcome: list[BaseException | None] = []
    stop = threading.Event()
    worker = threading.Thread(
        target=lambda: outcome.append(_fetch(url, target, timeout, max_bytes, stop)), daemon=True
    )
    worker.start()
    worker.join(total_timeout)
    if worker.is_alive():
        stop.set()  # the worker stops at its next chunk; a resolver call cannot be interrupted, only left
        raise SyncError(f"cannot download {url}: no complete answer within {total_timeout:.0f} s")
    error = outcome[0] if outcome else SyncError(f"cannot download {url}")
    if error is not None:
        raise error
    return target


def _fetch(url: str, target: Path, timeout: float, max_bytes: int, stop: threading.Event) -> BaseException | None:
    headers = {"User-Agent": "proofcheck-rulesets-sync"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (scheme checked by the caller)
    total = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, target.open("wb") as out:  # noqa: S310
            while not stop.is_set() and (chunk := response.read(1024 * 1024)):
                total += len(chunk)
                if total > max_bytes:
                    return SyncError(f"the archive is over the {max_bytes}-byte limit")
                out.write(chunk)
    except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError, timeouts, HTTP errors, bad URLs
        return SyncError(f"cannot download {url}: {type(exc).__name__}: {exc}")
    return None


def _safe_members(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    members: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    total = 0
    for info in archive.infolist():
        name = PurePosixPath(info.filename)
        if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
            raise SyncError("the archive holds a path outside itself")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            continue  # symbolic links are never extracted
        if info.is_dir():
            continue
        total += info.file_size
        if info.file_size > MAX_FILE_BYTES or total > MAX_TREE_BYTES or len(members) >= MAX_FILES:
            raise SyncError("the archive is over the ruleset size limits")
        members.append((info, name))
    return members


def extract_zip(archive_path: Path, target: Path) -> Path:
    """Extract a ruleset archive with limits; return the folder that holds the three folders."""
    try:
        with zipfile.ZipFile(archive_path) as archive:
            for info, name in _safe_members(archive):
                destination = target.joinpath(*name.parts)
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, destination.open("wb") as out:
                    shutil.copyfileobj(source, out, 1024 * 1024)
                if destination.stat().st_size > MAX_FILE_BYTES:
                    raise SyncError("an archive member is larger than it declared")
    except zipfile.BadZipFile as exc:
        raise SyncError(f"not a readable zip archive: {exc}") from None
    except (EOFError, zlib.error, OSError) as exc:  # a truncated or corrupted member
        raise SyncError(f"the archive is truncated or corrupted: {type(exc).__name__}: {exc}") from None
    return find_tree_root(target)


def find_tree_root(folder: Path) -> Path:
    """The folder (itself or one level down, as in GitHub archives) laid out like TestContenuCDA."""
    for candidate in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
        if (candidate / "schematrons").is_dir() and (candidate / XSD_PATH).is_file():
            return candidate
    raise SyncError(
        "not a TestContenuCDA-like tree (needs infrastructure/cda/CDA_extended.xsd and schematrons/)"
    )


def copy_tree(source: Path, tree: Path) -> None:
    """Copy the three folders, regular files only, within limits."""
    count = total = 0
    for folder in FOLDERS:
        origin = source / folder
        if not origin.is_dir():
            raise SyncError(f"the source has no {folder}/ folder")
        for path in sorted(origin.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue  # links are never followed; folders are created as files need them
            size = path.stat().st_size
            count += 1
            total += size
            if size > MAX_FILE_BYTES or count > MAX_FILES or total > MAX_TREE_BYTES:
                raise SyncError("the source is over the ruleset size limits")
            # Empty files are copied too: an empty file where a folder should be is a real defect.
            destination = tree / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            destination.chmod(0o644)


def tree_digest(tree: Path, examples: list[dict[str, Any]] | None = None) -> str:
    """sha256 over (relative path, content sha256) of every file, in path order, then over what the
    reference examples taught (they choose volets: other examples, other verdicts, another version)."""
    outer = hashlib.sha256()
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        outer.update(path.relative_to(tree).as_posix().encode("utf-8") + b"\0")
        outer.update(hashlib.sha256(path.read_bytes()).digest())
    if examples:
        outer.update(json.dumps(examples, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return outer.hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compile_all(
    tree: Path,
    entries: dict[str, dict[str, Any]],
    only: Callable[[str], bool] | None = None,
) -> None:
    """Compile each schematron (or those ``only`` accepts); the outcome goes into its entry."""
    try:
        compiler = SchematronCompiler(tree / "schematrons" / "moteur")
    except SchematronCompileError as exc:
        for entry in entries.values():
            entry.update(status="failed", error=str(exc))
        return
    for rel, entry in entries.items():
        if only is not None and not only(entry["name"]):
            entry["status"] = "not-compiled"
            continue
        try:
            outcome = compiler.compile(tree / rel)
        except SchematronCompileError as exc:
            entry.update(status="failed", error=str(exc))
            log.warning("schematron %s does not compile: %s", rel, exc)
            continue
        entry.update(
            status="compiled",
            xsl=outcome.xsl.relative_to(tree).as_posix(),
            compile_seconds=round(outcome.seconds, 3),
        )


# A tree the checks could not use at all is refused, so that it never replaces the ruleset in force.


def check_tree(tree: Path, roots: list[profiles.SchematronRoot]) -> None:
    if not any(root.kind == "volet" for root in roots):
        raise SyncError("the tree holds no CI-SIS volet schematron (schematrons/CI-SIS_*.sch)")
    try:
        etree.XMLSchema(etree.parse(str(tree / XSD_PATH), etree.XMLParser(no_network=True, resolve_entities=False)))
    except (OSError, etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise SyncError(f"the tree's {XSD_PATH} is not a usable schema ({type(exc).__name__})") from None


def check_compiled(entries: dict[str, dict[str, Any]]) -> None:
    attempted = [entry for entry in entries.values() if entry.get("status") in ("compiled", "failed")]
    if attempted and not any(entry["status"] == "compiled" for entry in attempted):
        raise SyncError(f"no schematron of the tree compiles ({attempted[0].get('error', '?')})")


def build_manifest(
    tree: Path,
    digest: str,
    source: str,
    imported_at: datetime,
    only: Callable[[str], bool] | None,
    examples: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    roots = profiles.discover(tree)
    check_tree(tree, roots)
    report, root_gaps = repair_tree(tree, [r.sch for r in roots])
    entries: dict[str, dict[str, Any]] = {
        r.sch: {"kind": r.kind, "name": r.name, "gaps": root_gaps.get(r.sch, [])} for r in roots
    }
    volet_files = {root.name: closure(root.sch, report) for root in roots if root.kind == "volet"}
    volet_map = voletmap.learn(tree, volet_files, examples or [])
    volet_map["coverage"] = coverage(volet_map)
    for root in roots:
        if root.kind == "volet":
            entries[root.sch]["template_ids"] = volet_map["volets"][root.name]["template_ids"]
    started = time.monotonic()
    compile_all(tree, entries, only)
    compile_seconds = round(time.monotonic() - started, 3)
    check_compiled(entries)
    j66 = valuesets.j66()
    components = {
        "TestContenuCDA": digest[:12],
        "cda_xsd": _sha256(tree / XSD_PATH),
        "J66": j66.version,
    }
    return {
        "version": version_name(digest, imported_at),
        "digest": digest,
        "imported_at": imported_at.isoformat(timespec="seconds"),
        "source": source,
        "components": components,
        "fixes": report.fixes,
        "schematrons": entries,
        "gaps": profiles.global_gaps(tree, entries),
        "volet_map": volet_map,
        "compile_seconds": compile_seconds,
    }


def sync(
    source: str,
    store: RulesetStore | None = None,
    *,
    only: Iterable[str] | None = None,
    timeout: float = DOWNLOAD_TIMEOUT,
    total_timeout: float = TOTAL_DOWNLOAD_TIMEOUT,
) -> SyncResult:
    """Import ``source`` (folder or zip URL) into ``store``; ``only`` limits compilation to those names
    (volet names like ``BIO-CR-BIO_2024.01`` or profile names like ``IHE``); the rest compiles on first use.
    """
    started = time.monotonic()
    store = store or RulesetStore()
    wanted = set(only) if only is not None else None
    accept = (lambda name: name in wanted) if wanted is not None else None
    staging = store.new_staging()
    try:
        with tempfile.TemporaryDirectory(prefix="proofcheck-sync-") as scratch:
            if _is_url(source):
                archive = download(source, Path(scratch) / "ruleset.zip", timeout=timeout, total_timeout=total_timeout)
                origin = extract_zip(archive, Path(scratch) / "unpacked")
            else:
                folder = Path(source).expanduser()
                if not folder.is_dir():
                    raise SyncError(f"no such folder: {source}")
                origin = find_tree_root(folder)
            copy_tree(origin, staging / "tree")
            examples = voletmap.read_examples(origin / EXAMPLES)
        digest = tree_digest(staging / "tree", examples)
        existing = store.with_digest(digest)
        if existing is not None:
            store.discard(staging)
            return SyncResult(existing, True, time.monotonic() - started)
        manifest = build_manifest(staging / "tree", digest, source, datetime.now(UTC), accept, examples)
        version = store.publish(staging, manifest)
    except BaseException:
        store.discard(staging)
        raise
    return SyncResult(version, False, time.monotonic() - started)
