"""A referential catalogue: which proofs a corridor expects, per profile, and how their ids are written.

The data lives in ``validators/referentials/<ID>.yaml`` (format in the README there); another
referential (Va2, another corridor) is a new data file, never new code. ``Referential.read`` turns an
id as written into what it designates: one proof, several (ambiguous), none (unknown) or nothing a
referential could hold (malformed).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from validators.proofid import IdMatch, IdSyntax, canonical_id, find_ids

DEFAULT_REFERENTIAL = "REM-MDV-LGC-SF-Va1"
# The data files are ours and small; a bigger one is a mistake, not a referential.
MAX_DATA_BYTES = 4 * 1024 * 1024


class ReferentialError(Exception):
    """A referential that does not exist or whose data file is invalid."""


@dataclass(frozen=True)
class Proof:
    id: str
    section: str
    requirement: str
    scenario: str
    title: str
    profiles: tuple[str, ...]
    natures: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    document_types: tuple[Mapping[str, str], ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    mandatory: bool = False
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reading:
    """What an id as written designates in a referential.

    ``state`` is ``proof`` (``proofs`` has exactly one id), ``ambiguous`` (``candidates`` lists what
    it could be), ``unknown`` or ``malformed`` (``reason`` says why).
    """

    match: IdMatch
    state: str
    proofs: tuple[str, ...] = ()
    candidates: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def proof_id(self) -> str | None:
        return self.proofs[0] if self.state == "proof" else None

    @property
    def written(self) -> str:
        return self.match.written


def fold(text: str) -> str:
    """Accent-, case- and separator-free form used to compare names (profiles)."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(plain.replace("-", " ").replace("_", " ").replace("’", "'").split())


@dataclass
class Referential:
    id: str
    title: str
    zero_pad: int
    syntax: IdSyntax
    sections: dict[str, str]
    profiles: tuple[Profile, ...]
    natures: dict[str, tuple[str, ...]]
    container_extensions: tuple[str, ...]
    proofs: dict[str, Proof]
    unresolved: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # key ("INS.41.2.2", "INS/VA1.35", "INS.41") -> proof ids it designates
    _index: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Referential:
        try:
            sections = {str(code): str(v.get("title", "")) for code, v in data["sections"].items()}
            zero_pad = int(data.get("id_style", {}).get("zero_pad", 0))
            referential = cls(
                id=str(data["id"]),
                title=str(data.get("title", "")),
                zero_pad=zero_pad,
                syntax=IdSyntax(
                    sections=tuple(sections),
                    squash_prefixes=tuple(data.get("squash_prefixes", ())),
                    crosswalk_marker=str(data.get("crosswalk_marker") or ""),
                ),
                sections=sections,
                profiles=tuple(
                    Profile(str(p["name"]), bool(p.get("mandatory", False)), tuple(p.get("aliases", ())))
                    for p in data["profiles"]
                ),
                natures={str(k): tuple(v.get("extensions", ())) for k, v in data.get("natures", {}).items()},
                container_extensions=tuple(data.get("container_extensions", ())),
                proofs={},
                unresolved={str(k): tuple(v) for k, v in (data.get("unresolved_aliases") or {}).items()},
            )
            for proof_id, entry in data["proofs"].items():
                referential._add(str(proof_id), entry)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReferentialError(f"invalid referential data: {exc!r}") from None
        referential._build_index()
        return referential

    def _add(self, proof_id: str, entry: Mapping[str, Any]) -> None:
        section, *numbers = proof_id.split(".")
        if section not in self.sections or len(numbers) != 3:
            raise ValueError(f"proof {proof_id} is not SECTION.X.Y.Z of a declared section")
        self.proofs[proof_id] = Proof(
            id=proof_id,
            section=section,
            requirement=".".join([section, numbers[0]]),
            scenario=".".join([section, *numbers[:2]]),
            title=str(entry.get("title", "")),
            profiles=tuple(entry.get("profiles", ())),
            natures=tuple(entry.get("nature", ())),
            aliases=tuple(entry.get("aliases", ())),
            document_types=tuple(entry.get("document_types", ())),
        )

    def _build_index(self) -> None:
        index: dict[str, list[str]] = {}

        def add(key: str, proof_id: str) -> None:
            index.setdefault(key, [])
            if proof_id not in index[key]:
                index[key].append(proof_id)

        for proof in self.proofs.values():
            for written in (proof.id, *proof.aliases):
                matches = [m for m in find_ids(written, self.syntax) if m.level == "proof"]
                if len(matches) != 1 or matches[0].malformed:
                    raise ReferentialError(f"{self.id}: cannot read id {written!r} of proof {proof.id}")
                parts = matches[0].key.split(".")
                # The proof, its scenario and its requirement, as written directly or through the alias.
                for depth in (4, 3, 2):
                    add(".".join(parts[:depth]), proof.id)
        self._index = {k: tuple(v) for k, v in index.items()}
        self._unresolved_keys = {}
        for alias, targets in self.unresolved.items():
            matches = find_ids(alias, self.syntax)
            if len(matches) != 1:
                raise ReferentialError(f"{self.id}: cannot read unresolved alias {alias!r}")
            self._unresolved_keys[matches[0].key] = targets

    # -- ids -----------------------------------------------------------------------------------

    def find(self, text: str) -> list[Reading]:
        """Every id written in ``text``, each with what it designates here."""
        return [self.read(match) for match in find_ids(text, self.syntax)]

    def read(self, match: IdMatch) -> Reading:
        if match.malformed:
            return Reading(match, "malformed", reason=match.malformed)
        for key, targets in self._unresolved_keys.items():
            if match.key == key or match.key.startswith(key + "."):
                return Reading(match, "ambiguous", candidates=targets,
                               reason="this republished id covers several requirements")
        proofs = self._index.get(match.key, ())
        if len(proofs) == 1:
            return Reading(match, "proof", proofs=proofs)
        if proofs:
            return Reading(match, "ambiguous", candidates=proofs,
                           reason=f"this {match.level} id has several proofs")
        return Reading(match, "unknown", reason=self._why_unknown(match))

    def _why_unknown(self, match: IdMatch) -> str:
        if match.section not in {s.upper() for s in self.sections}:
            return "its section is not in this referential"  # the id, section included, is in the message
        return f"no such {match.level} in this referential"

    def canonical(self, section: str, numbers: Iterable[int]) -> str:
        spelled = {s.upper(): s for s in self.sections}.get(section.upper(), section)
        return canonical_id(spelled, numbers, self.zero_pad)

    # -- profiles ------------------------------------------------------------------------------

    def profile_name(self, written: str) -> str | None:
        """The profile a publisher meant (accents, case and separators do not matter), else None."""
        wanted = fold(written)
        for profile in self.profiles:
            if wanted in {fold(profile.name), *(fold(a) for a in profile.aliases)}:
                return profile.name
        return None

    @property
    def mandatory_profiles(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.profiles if p.mandatory)

    def applied_profiles(self, declared: Iterable[str]) -> tuple[str, ...]:
        """The mandatory profiles plus the declared ones that exist, in catalogue order."""
        names = set(self.mandatory_profiles)
        names.update(n for n in (self.profile_name(d) for d in declared) if n)
        return tuple(p.name for p in self.profiles if p.name in names)

    def expected_proofs(self, profiles: Sequence[str] = ()) -> list[Proof]:
        """Proofs expected from a publisher applying for ``profiles`` (mandatory ones always)."""
        applied = set(self.applied_profiles(profiles))
        return [p for p in self.proofs.values() if applied & set(p.profiles)]

    # -- expectations --------------------------------------------------------------------------

    def extensions_for(self, proof: Proof) -> frozenset[str]:
        out = set(self.container_extensions)
        for nature in proof.natures:
            out.update(self.natures.get(nature, ()))
        return frozenset(out)

    def expectations(self, proof_id: str) -> dict[str, Any]:
        """What the checks of a file may know about its proof (``CheckContext.expectations``)."""
        proof = self.proofs[proof_id]
        out: dict[str, Any] = {
            "referential": self.id,
            "title": proof.title,
            "section": proof.section,
            "requirement": proof.requirement,
            "scenario": proof.scenario,
            "profiles": list(proof.profiles),
            "nature": proof.natures[0] if proof.natures else None,
            "natures": list(proof.natures),
            "extensions": sorted(self.extensions_for(proof)),
        }
        if proof.document_types:
            out["document_types"] = [dict(d) for d in proof.document_types]
        return out


def _data_dir() -> Path:
    return Path(str(resources.files("validators").joinpath("referentials")))


def available_referentials() -> list[str]:
    return sorted(p.stem for p in _data_dir().glob("*.yaml"))


def load_referential_file(path: Path) -> Referential:
    """A referential from any data file (tests, a referential under review)."""
    try:
        if path.stat().st_size > MAX_DATA_BYTES:
            raise ReferentialError(f"{path.name} is over {MAX_DATA_BYTES} bytes")
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ReferentialError(f"cannot read {path.name}: {exc.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise ReferentialError(f"{path.name} is not a mapping")
    return Referential.from_data(data)


@cache
def _load_shipped(name: str) -> Referential:
    return load_referential_file(_data_dir() / f"{name}.yaml")


def load_referential(name: str = DEFAULT_REFERENTIAL) -> Referential:
    """A shipped referential by id, case-insensitive (``REM-MDV-LGC-SF-Va1``), loaded once."""
    for candidate in available_referentials():
        if candidate.lower() == name.strip().lower():
            return _load_shipped(candidate)
    known = ", ".join(available_referentials())
    raise ReferentialError(f"unknown referential {name[:100]!r} (known: {known})")


__all__ = [
    "DEFAULT_REFERENTIAL",
    "Profile",
    "Proof",
    "Reading",
    "Referential",
    "ReferentialError",
    "available_referentials",
    "fold",
    "load_referential",
    "load_referential_file",
]
