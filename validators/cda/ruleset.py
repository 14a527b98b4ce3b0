"""A synced ruleset loaded for checking: the XSD and the compiled Schematrons, loaded once, lazily.

Loading the largest compiled profile takes seconds, so executables are cached per ruleset version for
the life of the process (the long-running service keeps them; a dry run loads only what its documents
need). A schematron the sync did not compile is compiled on first use, into the store, once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from validators.cda import voletmap
from validators.cda.compiler import (
    SchematronCompileError,
    SchematronCompiler,
    optimise_file,
    processor,
    saxon_message,
)
from validators.cda.store import RulesetStore, RulesetVersion

log = logging.getLogger(__name__)
_loaded: dict[str, LoadedRuleset] = {}
# Value-set and terminology files parsed once per process (the largest terminology is 3.4 MB).
MAX_CACHED_DOCUMENT_BYTES = 32 * 1024 * 1024
MAX_CACHED_BYTES = 256 * 1024 * 1024
_loaded_lock = threading.Lock()


class ProfileUnavailableError(RuntimeError):
    """A schematron that cannot run in this ruleset (missing, failed to compile or to load)."""


@dataclass
class LoadedRuleset:
    version: RulesetVersion
    _xsd: etree.XMLSchema | None = None
    _xsd_error: str | None = None
    _executables: dict[str, Any] = field(default_factory=dict)
    _failures: dict[str, str] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _documents: dict[str, Any] = field(default_factory=dict)  # absolute path -> parsed XdmNode
    _document_bytes: int = 0
    _documents_map: Any = None
    _run_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _legacy_volet_map: dict[str, dict[str, Any]] | None = None

    @property
    def tree(self) -> Path:
        return self.version.tree

    def components(self) -> dict[str, str]:
        return self.version.components

    def xsd(self) -> etree.XMLSchema:
        """The CI-SIS schema (raises ProfileUnavailableError if it cannot be built)."""
        with self._lock:
            if self._xsd is None and self._xsd_error is None:
                path = self.tree / "infrastructure" / "cda" / "CDA_extended.xsd"
                try:
                    parser = etree.XMLParser(no_network=True, resolve_entities=False)
                    self._xsd = etree.XMLSchema(etree.parse(str(path), parser))
                except (OSError, etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
                    self._xsd_error = type(exc).__name__
            if self._xsd is None:
                raise ProfileUnavailableError(f"CDA_extended.xsd cannot be loaded ({self._xsd_error})")
            return self._xsd

    def documents(self, paths: Iterable[Path]) -> Any:
        """The map (absolute path -> document) handed to optimised stylesheets for doc(): ``paths`` are
        parsed once per process and added to it; None when nothing is cached. Files over the limits
        are left to doc(), which reads them on each transformation (slower, same result)."""
        with self._lock:
            changed = False
            for path in paths:
                key = os.path.normpath(os.path.abspath(path))
                if key in self._documents:
                    continue
                try:
                    size = os.path.getsize(key)
                    if size > MAX_CACHED_DOCUMENT_BYTES or self._document_bytes + size > MAX_CACHED_BYTES:
                        continue
                    self._documents[key] = processor().parse_xml(xml_file_name=key)
                except Exception as exc:  # unreadable or not XML: doc() reports it as before
                    log.debug("ruleset file %s not cached: %s", os.path.basename(key), saxon_message(exc))
                    continue
                self._document_bytes += size
                changed = True
            if changed:
                self._documents_map = processor().make_map2(dict(self._documents))
            return self._documents_map

    def run_lock(self, name: str) -> threading.Lock:
        """Held while a parameter is set on, and a transformation runs with, one shared executable."""
        with self._lock:
            return self._run_locks.setdefault(name, threading.Lock())

    def entry(self, name: str) -> tuple[str, dict[str, Any]] | None:
        for rel, entry in self.version.schematrons.items():
            if entry["name"] == name:
                return rel, entry
        return None

    def volets(self) -> dict[str, dict[str, Any]]:
        return {e["name"]: e for e in self.version.schematrons.values() if e["kind"] == "volet"}

    def volet_map(self) -> dict[str, dict[str, Any]]:
        """What the tree says about each volet (``voletmap.py``), learned at sync; a store synced before
        the map existed has it learned here from its schematrons (no examples: they were not kept)."""
        learned = (self.version.manifest.get("volet_map") or {}).get("volets")
        if learned is not None:
            return dict(learned)
        with self._lock:
            if self._legacy_volet_map is None:
                files = {e["name"]: voletmap.root_and_includes(self.tree, rel) for rel, e in
                         self.version.schematrons.items() if e["kind"] == "volet"}
                self._legacy_volet_map = voletmap.learn(self.tree, files, [])["volets"]
            return dict(self._legacy_volet_map)

    def executable(self, name: str) -> Any:
        """The loaded XSLT of schematron ``name`` (compiled on first use if the sync did not)."""
        with self._lock:
            if name in self._executables:
                return self._executables[name]
            if name in self._failures:
                raise ProfileUnavailableError(self._failures[name])
            try:
                loaded = self._load(name)
            except ProfileUnavailableError as exc:
                self._failures[name] = str(exc)
                raise
            self._executables[name] = loaded
            return loaded

    def _load(self, name: str) -> Any:
        found = self.entry(name)
        if found is None:
            raise ProfileUnavailableError(f"the ruleset has no {name} schematron")
        rel, entry = found
        if entry.get("status") == "failed":
            raise ProfileUnavailableError(f"it does not compile: {entry.get('error', '')}")
        xsl = self.tree / rel
        xsl = xsl.with_suffix(".xsl")
        if entry.get("status") != "compiled" or not xsl.is_file():
            try:
                outcome = SchematronCompiler(self.tree / "schematrons" / "moteur").compile(self.tree / rel)
            except SchematronCompileError as exc:
                raise ProfileUnavailableError(f"it does not compile: {exc}") from None
            entry.update(
                status="compiled",
                xsl=outcome.xsl.relative_to(self.tree).as_posix(),
                compile_seconds=round(outcome.seconds, 3),
            )
            # A read-only store still works; the next process compiles again.
            with contextlib.suppress(OSError):
                self.version.save_manifest()
        # A store compiled before the optimisation step existed is optimised once, here.
        optimise_file(xsl)
        try:
            return processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(xsl))
        except Exception as exc:  # saxonche errors
            raise ProfileUnavailableError(
                f"its compiled stylesheet does not load: {saxon_message(exc)}"
            ) from None


def load_ruleset(version: RulesetVersion) -> LoadedRuleset:
    """The process-wide loaded form of ``version`` (one per version path)."""
    key = str(version.path)
    with _loaded_lock:
        if key not in _loaded:
            _loaded[key] = LoadedRuleset(version)
        return _loaded[key]


def latest(root: Path | None = None) -> LoadedRuleset | None:
    version = RulesetStore(root).latest()
    return load_ruleset(version) if version is not None else None
