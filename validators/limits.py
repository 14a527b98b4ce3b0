"""The limits an archive is held to: the package itself (``TriageLimits``) and archives found inside proof
files (``ArchiveLimits``: tighter, and members held in memory). Sections of ``validators.settings``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from validators.settingslib import setting

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class TriageLimits:
    """Limits an archive must stay within. Defaults suit a proof package of a few hundred files."""

    max_entries: int = setting(10_000, doc="entries of the archive (refused from its end record alone)")
    max_total_size: int = setting(4 * GiB, doc="declared uncompressed size of all entries")
    max_entry_size: int = setting(2 * GiB, doc="declared uncompressed size of one entry")
    max_ratio: float = setting(200.0, doc="compression ratio of one entry (a bomb past it)")
    # Small members (text, logs) legitimately compress beyond any ratio: judge only those above this size.
    ratio_floor: int = setting(1 * MiB, doc="entries smaller than this are not judged by their ratio")
    max_depth: int = setting(3, doc="archives nested inside archives")
    max_dictionary: int = setting(
        256 * MiB, doc="memory a decoder may allocate for its dictionary or model (7z, xz), read from headers"
    )

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any] | None, section: str, base: TriageLimits | None = None
    ) -> TriageLimits:
        """``base`` (default: the class defaults) with the fields ``settings[section]`` sets."""
        values = dict((settings or {}).get(section) or {})
        known = {f.name for f in fields(cls)}
        return replace(base or cls(), **{k: v for k, v in values.items() if k in known})


@dataclass(frozen=True)
class ArchiveLimits(TriageLimits):
    """Archives found inside proof files hold screenshots and XDM documents, not a whole package."""

    max_entries: int = setting(1000, doc="entries of the archive")
    max_total_size: int = setting(GiB, doc="declared uncompressed size of all entries")
    max_entry_size: int = setting(64 * MiB, doc="declared uncompressed size of one entry")
    max_member_bytes: int = setting(64 * MiB, doc="one member decompressed in memory (a child file)")
    max_total_bytes: int = setting(256 * MiB, doc="every member of one archive decompressed in memory")
