"""The rule catalogue: every rule a validator may emit, loaded from ``validators/catalogue/*.yaml``.

A family lives in ``<family>.yaml`` and optionally ``<family>-<part>.yaml`` files.

One YAML file per family keeps each family's rules next to each other and lets the reference
documentation (``proofcheck rules --format markdown``) be generated from the data, never written twice.
A rule id is never reused for another meaning; a renamed rule keeps its old id under ``replaced_by``.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

import yaml

from validators.model import NO_LOCATION, Finding, Location, ParamValue, Severity
from validators.pii.mask import mask_identifiers

FAMILIES = ("package", "format", "ssi", "pii", "cda", "system")


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    title: str
    message: str
    why: str
    fix: str
    replaced_by: str | None = None
    # The same texts in French (``fr:`` in the YAML, keys title/message/why/fix), for instructors' reports.
    fr: tuple[tuple[str, str], ...] = ()
    # French words for parameters that take a few fixed English values (``fr: values: {param: {en: fr}}``),
    # e.g. ``position: {before: avant elle}``: the French message shows them, ``params`` keep the English.
    fr_values: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    @property
    def family(self) -> str:
        return self.id.split(".", 1)[0]

    def text(self, field: str, language: str = "fr") -> str:
        """``title``, ``message``, ``why`` or ``fix`` in ``language`` ("fr" falls back to English)."""
        if language == "fr":
            french = dict(self.fr).get(field)
            if french is not None:
                return french
        text: str = getattr(self, field)
        return text

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(
            name for _, name, _, _ in string.Formatter().parse(self.message) if name
        )


class UnknownRuleError(KeyError):
    """A validator asked for a rule that is not catalogued (a programming error, caught by tests)."""


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _family_files(family: str) -> list[str]:
    """``<family>.yaml`` and ``<family>-<part>.yaml`` (a family may be split by owner/topic)."""
    folder = resources.files("validators").joinpath("catalogue")
    names = [
        entry.name
        for entry in folder.iterdir()
        if entry.name == f"{family}.yaml" or (entry.name.startswith(f"{family}-") and entry.name.endswith(".yaml"))
    ]
    return sorted(names)


FRENCH_FIELDS = ("title", "message", "why", "fix")


def _french(entry: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    fr = entry.get("fr")
    if fr is None:
        return ()
    if not isinstance(fr, dict) or set(fr) - {"values"} != set(FRENCH_FIELDS):
        raise ValueError(f"rule {entry.get('id')}: 'fr' must hold exactly {', '.join(FRENCH_FIELDS)} (and values)")
    return tuple((name, " ".join(str(fr[name]).split())) for name in FRENCH_FIELDS)


def _french_values(entry: dict[str, Any]) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    values = (entry.get("fr") or {}).get("values") or {}
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        raise ValueError(f"rule {entry.get('id')}: 'fr: values' maps a parameter to {{english: french}}")
    return tuple(
        (str(name), tuple((str(en), str(fr)) for en, fr in sorted(words.items())))
        for name, words in sorted(values.items())
    )


def _load_family(family: str) -> list[Rule]:
    folder = resources.files("validators").joinpath("catalogue")
    entries: list[dict[str, Any]] = []
    for name in _family_files(family):
        entries.extend(yaml.safe_load(folder.joinpath(name).read_text("utf-8")) or [])
    rules = []
    for entry in entries:
        rule = Rule(
            id=entry["id"],
            severity=Severity(entry["severity"]),
            title=entry["title"].strip(),
            message=entry["message"].strip(),
            why=" ".join(entry["why"].split()),
            fix=" ".join(entry["fix"].split()),
            replaced_by=entry.get("replaced_by"),
            fr=_french(entry),
            fr_values=_french_values(entry),
        )
        if rule.family != family:
            raise ValueError(f"rule {rule.id} is filed under family {family}")
        rules.append(rule)
    return rules


@cache
def catalogue() -> dict[str, Rule]:
    """All catalogued rules by id, in family then id order."""
    out: dict[str, Rule] = {}
    for family in FAMILIES:
        for rule in sorted(_load_family(family), key=lambda r: r.id):
            if rule.id in out:
                raise ValueError(f"rule {rule.id} is catalogued twice")
            out[rule.id] = rule
    return out


def get(rule_id: str) -> Rule:
    try:
        return catalogue()[rule_id]
    except KeyError:
        raise UnknownRuleError(rule_id) from None


# Characters that reorder or hide the text around them (bidi controls, invisible marks) and control
# characters: a name quoted from the package that holds U+202E reverses the rest of the report's sentence.
_UNSHOWN = frozenset(
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
    "\u2028\u2029"
) | frozenset(chr(code) for code in (*range(0x20), *range(0x7F, 0xA0)) if chr(code) not in "\t\n\r")


def shown_text(text: str) -> str:
    """``text`` with every NIR-shaped number masked and every character that would reorder, hide or
    control the display written as a ``\\uXXXX`` escape (names quoted from the package)."""
    if not _UNSHOWN.intersection(text):
        return mask_identifiers(text)
    return mask_identifiers("".join(f"\\u{ord(c):04x}" if c in _UNSHOWN else c for c in text))


def _masked(value: ParamValue) -> ParamValue:
    """A text parameter as a report may show it (``shown_text``)."""
    return shown_text(value) if isinstance(value, str) else value


def param_value(value: Any) -> ParamValue:
    """A template parameter as kept in a finding: str, int or float as given, anything else as its text.

    The text is what the template shows for it (``format(value, "")``), so the rendered message is the
    same either way; a bool or a non-finite float becomes text too (JSON has no place for NaN).
    """
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return format(value, "")


def render(template: str, params: Mapping[str, Any]) -> str:
    """``template`` filled with ``params``; a placeholder without a value stays as ``{name}``."""
    return string.Formatter().vformat(template, (), _Lenient(params))


# How validators join several fixed words in one parameter ("control characters, backslash separators",
# "video or screenshot"), and the French joint.
_LIST_JOINTS = ((", ", ", "), (" or ", " ou "))


def french_word(words: Mapping[str, str], value: str) -> str:
    """The French for ``value``: its word in ``words``, or, for a list of words joined by ", " or " or ",
    each one's word when every one has one; else ``value`` as it is."""
    if value in words:
        return words[value]
    for joint, french_joint in _LIST_JOINTS:
        pieces = value.split(joint)
        if len(pieces) > 1 and all(piece in words for piece in pieces):
            return french_joint.join(words[piece] for piece in pieces)
    return value


def french(rule: Rule, params: Mapping[str, Any]) -> str | None:
    """The rule's French message filled with ``params``, or None when the rule has no French text.

    A parameter with French words in the catalogue (``fr_values``) shows the French word for its value
    (``french_word``: a list of such words shows each one's).
    """
    template = dict(rule.fr).get("message")
    if template is None:
        return None
    words = {name: dict(pairs) for name, pairs in rule.fr_values}
    shown = {k: french_word(words[k], v) if k in words and isinstance(v, str) else v for k, v in params.items()}
    return render(template, shown)


def finding(
    rule_id: str,
    location: Location = NO_LOCATION,
    *,
    severity: Severity | None = None,
    evidence: str | None = None,
    **params: Any,
) -> Finding:
    """Build a finding of a catalogued rule, its messages rendered from the rule's templates.

    ``params`` fill the templates and are kept in the finding (those the template names, no other):
    never pass a full personal identifier or document content.
    """
    rule = get(rule_id)
    # Names taken from the package (members, attachments) may hold a NIR, or a bidi override that would
    # reverse the report's text: reports never repeat either as is.
    kept = {name: _masked(param_value(params[name])) for name in sorted(rule.placeholders) if name in params}
    if location.entry is not None:
        location = replace(location, entry=shown_text(location.entry))
    return Finding(
        rule=rule.id,
        severity=severity or rule.severity,
        message=render(rule.message, kept),
        location=location,
        evidence=shown_text(evidence) if evidence is not None else None,
        params=tuple(kept.items()),
        message_fr=french(rule, kept),
    )
