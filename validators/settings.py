"""The engine's settings: one typed object, built once (defaults, ``PROOFCHECK_CONFIG``, environment), passed down.

``EngineSettings.load()`` reads and checks everything at start; ``EngineSettings.coerce(x)`` turns what a
caller passes (the object itself, a dict of overrides as tests and ``PROOFCHECK_ENGINE_SETTINGS`` give,
or None) into the object. Checks read typed fields (``settings.pdf_max_bytes``); the dict view
(``settings.get("pdf_max_bytes")``) is kept for code that has not moved yet. Only this module and
``flows/settings.py`` read ``PROOFCHECK_*`` variables; ``docs/configuration.md`` is generated from the
declarations below (``python tools/sync_config_doc.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from validators.limits import ArchiveLimits, GiB, MiB, TriageLimits
from validators.mail.limits import MailLimits
from validators.settingslib import (
    DEFAULT,
    SettingsBase,
    SettingsError,
    above,
    dir_or_absent,
    readable_dir,
    readable_file,
    readable_path,
    setting,
)

__all__ = ["ArchiveLimits", "EngineSettings", "PiiSettings", "SettingsError"]

DEFAULT_HOME = "~/.local/share/proofcheck"
CDA_MAX_PAYLOADS = 100  # level-1 bodies and embedded files taken out of one CDA document
PDF_MAX_BYTES = GiB
IMAGE_MAX_MEGAPIXELS = 100.0  # an 8K screen is 33 megapixels
LIBXML2_MAX_DEPTH = 256  # libxml2's own nesting limit: deeper is refused by the parser anyway


def _clamd_address(value: Any) -> str | None:
    if value is None:
        return None
    from validators.ssi.clamd_client import ClamdAddress

    try:
        ClamdAddress.parse(str(value))
    except ValueError:
        return "expected unix:/path/clamd.sock or host:port"
    return None


def _positive_timeouts(value: Any) -> str | None:
    bad = sorted(name for name, seconds in (value or {}).items() if seconds <= 0)
    return f"time limits must be > 0 seconds ({', '.join(bad)})" if bad else None


@dataclass(frozen=True)
class PiiSettings:
    """What the ``pii`` check reads. Open: keys it reads before declaring them here are kept in ``other``."""

    open_section: ClassVar[bool] = True

    allowlist: tuple[Path, ...] = setting(
        (),
        doc="extra YAML files of published fictitious identities (an `identities:` list of `nir:`), "
        "beside the shipped ANS test identities",
        env="PROOFCHECK_PII_ALLOWLIST",
        checks=(readable_file,),
        separator=os.pathsep,
    )
    other: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineSettings(SettingsBase, Mapping[str, Any]):
    """Every setting of the engine (the checks, the intake, the ruleset store) and of the dry run."""

    section_name: ClassVar[str] = "engine"
    json_env: ClassVar[str | None] = "PROOFCHECK_ENGINE_SETTINGS"

    # -- antivirus -------------------------------------------------------------------------------------
    clamd: str | None = setting(
        None,
        doc="clamd address, `unix:/path/clamd.sock` or `host:port`",
        env="PROOFCHECK_CLAMD",
        checks=(_clamd_address,),
        affects_results=False,
        default_doc="a private clamd when ClamAV is installed, else the antivirus check reports itself not run",
    )
    clamd_database: Path | None = setting(
        None,
        doc="signature folder (freshclam) of the private clamd",
        env="PROOFCHECK_CLAMD_DATABASE",
        checks=(readable_dir,),
        affects_results=False,
        default_doc="`/var/lib/clamav` when it holds `.cvd`/`.cld` files, else the project's test signatures",
    )
    clamd_binary: Path | None = setting(
        None,
        doc="the clamd program started as the private clamd; when it is not an executable file, `clamd` on the "
        "PATH is used, and without one the antivirus check reports itself not run",
        env="PROOFCHECK_CLAMD_BINARY",
        affects_results=False,
        default_doc="`/usr/sbin/clamd`, else `clamd` on the PATH",
    )
    clamd_signatures: Literal["test", "production"] | None = setting(
        None,
        doc="what the configured clamd loaded (set by the harness that started it; reported in provenance)",
        affects_results=False,
        default_doc="read from clamd's version reply",
    )
    antivirus_max_database_age_days: float = setting(
        7.0,
        doc="a signature database older than this many days is a warning",
        env="PROOFCHECK_AV_MAX_AGE_DAYS",
        checks=(above(0),),
    )
    antivirus_test_signatures: Literal["warn", "accept"] = setting(
        "warn",
        doc="`accept` makes 'only test signatures were used' an info instead of a warning (demo, CI)",
        env="PROOFCHECK_ANTIVIRUS_TEST_SIGNATURES",
    )
    # -- file checks -----------------------------------------------------------------------------------
    timeouts: Mapping[str, float] = setting(
        doc="time limit in seconds per check name, over the check's own (`{\"ssi-pdf\": 10}`)",
        checks=(_positive_timeouts,),
        affects_results=False,
        factory=dict,
        default_doc="each check's own",
    )
    pdf_max_bytes: int = setting(PDF_MAX_BYTES, doc="larger PDFs are not parsed by the PDF check", checks=(above(0),))
    image_max_megapixels: float = setting(
        IMAGE_MAX_MEGAPIXELS, doc="larger images are a decompression-bomb finding", checks=(above(0),)
    )
    xml_max_bytes: int = setting(64 * MiB, doc="larger XML documents are not parsed", checks=(above(0),))
    xml_max_depth: int = setting(LIBXML2_MAX_DEPTH, doc="deeper XML documents are refused", checks=(above(0),))
    cda_profiles: tuple[str, ...] | None = setting(
        None,
        doc="transverse Schematron profiles run on every CDA document, besides its volet",
        default_doc="IHE, ModelesDeContenusCDA, Modeles_ANS, StructurationMinimale, terminologies",
    )
    cda_max_payloads: int = setting(
        CDA_MAX_PAYLOADS, doc="bodies and embedded files taken out of one CDA document", checks=(above(0),)
    )
    archive: ArchiveLimits = setting(
        doc="limits of archives found in proof files (entries, sizes, ratio, depth, memory)", factory=ArchiveLimits
    )
    email: MailLimits = setting(doc="limits of one e-mail proof (parts, depth, sizes)", factory=MailLimits)
    pii: PiiSettings = setting(doc="the personal-data check", factory=PiiSettings)
    # -- the package intake ----------------------------------------------------------------------------
    package: TriageLimits = setting(doc="limits of the package archive itself", factory=TriageLimits)
    source: str = setting(
        "local", doc="recorded as the package's source in a dry run's verdict", affects_results=False
    )
    # -- rulesets --------------------------------------------------------------------------------------
    home: Path = setting(
        doc="proofcheck's data folder (ruleset store, keys)",
        env="PROOFCHECK_HOME",
        checks=(dir_or_absent,),
        affects_results=False,
        factory=lambda: Path(DEFAULT_HOME).expanduser(),
        default_doc=f"`{DEFAULT_HOME}`",
    )
    rulesets_dir: Path | None = setting(
        None,
        doc="the CDA ruleset store (`proofcheck rulesets sync` writes it, the checks read its newest version)",
        env="PROOFCHECK_RULESETS",
        checks=(dir_or_absent,),
        affects_results=False,  # what a check read of it is keyed by the ruleset's own versions
        default_doc="`<home>/rulesets`",
    )
    j66: Path | None = setting(
        None,
        doc="the J66 file (SVS XML or FHIR JSON) used when the ruleset in force has no synced J66",
        env="PROOFCHECK_J66",
        checks=(readable_file,),
        affects_results=False,  # keyed by the J66 version it declares (ruleset component J66)
        default_doc="the shipped snapshot `jdv/`",
    )
    ruleset_source: str | None = setting(
        None,
        doc="a CI-SIS tree (folder, zip or URL) tried after the ANS repository when a first ruleset is "
        "obtained (`make demo`: one that cannot be synced is said and skipped), and synced with the value sets "
        "by the daily sync",
        env="PROOFCHECK_RULESET_SOURCE",
        affects_results=False,
        default_doc="none",
    )
    # -- verdict signatures ----------------------------------------------------------------------------
    trusted_keys: tuple[Path, ...] = setting(
        (),
        doc="public keys (files or folders of `.pub`) `proofcheck verify` trusts, joined by `:`",
        env="PROOFCHECK_TRUSTED_KEYS",
        checks=(readable_path,),
        affects_results=False,
        separator=os.pathsep,
        default_doc="none: `--key` is needed",
    )

    @classmethod
    def derive(cls, values: dict[str, Any], sources: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
        if values.get("rulesets_dir") is None:
            values["rulesets_dir"] = Path(values["home"]) / "rulesets"
            sources["rulesets_dir"] = f"{DEFAULT} (<home>/rulesets)"
        return values, sources

    @classmethod
    def coerce(cls, settings: Mapping[str, Any] | None) -> EngineSettings:
        """The settings a caller passed: this object as is, or a dict of overrides on the environment's."""
        if isinstance(settings, EngineSettings):
            return settings
        return cls.load(overrides=settings or {})

    def overrides(self) -> dict[str, Any]:
        """The values not at their default, as JSON (``PROOFCHECK_ENGINE_SETTINGS`` for a child process)."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f, _ in self.specs()
            if not self.origin_of(f.name).startswith(DEFAULT) or any(
                not self.origin_of(key).startswith(DEFAULT) for key in self._section_keys(f.name)
            )
        }

    def _section_keys(self, name: str) -> list[str]:
        value = getattr(self, name)
        return [f"{name}.{f.name}" for f in fields(value)] if is_dataclass(value) else []

    @property
    def ruleset_store(self) -> Path:
        return self.rulesets_dir or self.home / "rulesets"

    def digest_values(self, names: tuple[str, ...] | None) -> dict[str, Any]:
        """The values of ``names`` (None: every setting) that change results, as the result cache keys them."""
        chosen = {f.name: spec for f, spec in self.specs() if spec.affects_results}
        if names is not None:
            chosen = {n: s for n, s in chosen.items() if n in names}
        return {name: _plain(getattr(self, name)) for name in sorted(chosen)}

    # -- the dict view, for code that has not moved to typed fields yet -----------------------------------

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        value = getattr(self, key)
        if is_dataclass(value) and not isinstance(value, type):
            return {f.name: getattr(value, f.name) for f in fields(value)}
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f, _ in cls.specs())


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value
