"""Choose a document's CI-SIS volet Schematron from what the synced tree says (``voletmap.py``).

The key is the document's most specific volet templateId (root under 1.2.250.1.213.1.1.1 and the volet
version as @extension). In order, the first that names volets wins:

1. the tree's reference examples that carry exactly this templateId and version;
2. the volets whose header rules assert this templateId, or whose examples carry it in another version
   (the volet's family, then its version);
3. the one volet family whose header rules fix the document's type (ClinicalDocument/code), in the
   declared version (a type many volets share names none);

then, within the volets found, the version the document declares; else (no version declared, or several
volets) every candidate runs and the best fit is kept; a declared version absent from the ruleset is
checked against the nearest older one, as partial coverage. Level-1 documents (XDS-SD) have no volet.
Every choice carries its reason, in words an instructor can check against the tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from validators.cda.document import HL7_NS, CdaDocument
from validators.cda.voletmap import family_of, key_template, version_of

_NUMBERS = re.compile(r"\d+")


@dataclass(frozen=True)
class VoletChoice:
    name: str | None
    reason: str = ""  # why this volet (or why none)
    note: str | None = None  # why coverage is partial (an older version stands in for the declared one)
    alternatives: tuple[str, ...] = ()  # several candidates: each runs, the best fit is kept


def _version_key(version: str) -> tuple[int, ...]:
    """``2022.01`` -> (2022, 1); ``201310`` (a VSM 1.x extension: year and month) -> (2013, 10)."""
    numbers = [int(n) for n in _NUMBERS.findall(version)]
    if len(numbers) == 1 and len(str(numbers[0])) == 6:
        return (numbers[0] // 100, numbers[0] % 100)
    return tuple(numbers)


def _example_files(volet: dict[str, Any], root: str, extension: str | None = None) -> list[str]:
    return [
        e["file"] for e in volet.get("examples", [])
        if e.get("root") == root and (extension is None or (e.get("extension") or "") == extension)
    ]


def _by_examples(volets: dict[str, dict[str, Any]], root: str, extension: str) -> dict[str, list[str]]:
    found = {name: _example_files(v, root, extension) for name, v in volets.items()}
    return {name: files for name, files in found.items() if files}


def _families(volets: dict[str, dict[str, Any]], root: str, code: str, version: str) -> tuple[set[str], str]:
    """Volet families the tree ties to ``root`` (assertions, examples in any version), else to ``code``.

    A document type is shared by many volets (34133-9, 11488-4...): it names a volet only when one family
    alone fixes it and has the declared version; otherwise the document's volet is unknown."""
    asserted = {family_of(n) for n, v in volets.items() if root in v.get("template_ids", [])}
    exemplified = {family_of(n) for n, v in volets.items() if _example_files(v, root)}
    if asserted or exemplified:
        how = []
        if asserted:
            how.append(f"asserted by the header rules of {', '.join(sorted(asserted))}")
        if exemplified - asserted:
            how.append(f"carried by the tree's examples of {', '.join(sorted(exemplified - asserted))}")
        return asserted | exemplified, f"templateId {root} is {' and '.join(how)}"
    coded = {family_of(n) for n, v in volets.items() if code and code in v.get("type_codes", [])}
    if len(coded) == 1 and any(family_of(n) in coded and version_of(n) == version for n in volets):
        return coded, f"the document type {code} is fixed by the header rules of {', '.join(sorted(coded))}"
    return set(), ""


def choose_volet(document: CdaDocument, volets: dict[str, dict[str, Any]]) -> VoletChoice:
    """``volets``: the ruleset's volet map (name -> template_ids, type_codes, names, examples)."""
    if document.is_level1:
        return VoletChoice(None, "level-1 document (XDS-SD): no volet by design")
    return choose(key_template(document.template_ids()), document_code(document), volets)


def choose(key: tuple[str, str] | None, code: str, volets: dict[str, dict[str, Any]]) -> VoletChoice:
    """The volet of a structured document whose key templateId is ``key`` and whose type is ``code``."""
    if key is None:
        return VoletChoice(None, "the document has no CI-SIS volet templateId")
    root, version = key
    shown = f"{root} version {version}" if version else f"{root} (no version)"
    exact = _by_examples(volets, root, version)
    if len(exact) == 1:
        name, files = next(iter(exact.items()))
        return VoletChoice(name, f"templateId {shown} is carried by the tree's example {files[0]} of {name}")
    if exact:
        names = sorted(exact)
        return VoletChoice(names[-1], f"templateId {shown} is carried by the tree's examples of {', '.join(names)}",
                           alternatives=tuple(reversed(names)))
    families, why = _families(volets, root, code, version)
    if not families:
        return VoletChoice(None, f"no volet of the ruleset asserts templateId {root} or carries it in an example, "
                                 "and none fixes the document's type")
    candidates = sorted((n for n in volets if family_of(n) in families), key=lambda n: (_version_key(version_of(n)), n))
    matching = [n for n in candidates if version and version_of(n) == version]
    if len(matching) == 1:
        return VoletChoice(matching[0], f"{why}; version {version}")
    if matching:
        return VoletChoice(matching[-1], f"{why}; version {version} in {len(matching)} volets",
                           alternatives=tuple(reversed(matching)))
    if not version:
        return VoletChoice(candidates[-1], f"{why}; no version declared", alternatives=tuple(reversed(candidates)))
    older = [n for n in candidates if _version_key(version_of(n)) <= _version_key(version)]
    if older:
        note = f"volet version {version} is not in the ruleset; checked against {older[-1]}"
        return VoletChoice(older[-1], f"{why}; nearest older version", note)
    note = f"volet version {version} is not in the ruleset; checked against the closest of {', '.join(candidates)}"
    return VoletChoice(candidates[-1], f"{why}; version {version} absent", note, tuple(reversed(candidates)))


def document_code(document: CdaDocument) -> str:
    code = document.root.find(f"{{{HL7_NS}}}code")
    return (code.get("code") or "") if code is not None else ""


def _without_example(volets: dict[str, dict[str, Any]], file: str) -> dict[str, dict[str, Any]]:
    return {
        name: {**v, "examples": [e for e in v.get("examples", []) if e.get("file") != file]}
        for name, v in volets.items()
    }


def _gets(volet: str, choice: VoletChoice) -> bool:
    return volet == choice.name or volet in choice.alternatives


def coverage(volet_map: dict[str, Any]) -> dict[str, Any]:
    """How many of the tree's structured reference examples named after a volet get that volet: with the
    whole map, and with the map learned without the example itself (what a new document of the same kind
    would get). An example "gets" its volet when it is chosen or among the candidates that run."""
    volets = volet_map.get("volets", {})
    named = [e for e in volet_map.get("examples", []) if e.get("volet") and not e.get("level1")]
    found = alone = 0
    missed: list[str] = []
    for example in named:
        key = (example["root"], example["extension"] or "") if example.get("root") else None
        code = example.get("code") or ""
        if _gets(example["volet"], choose(key, code, volets)):
            found += 1
        else:
            missed.append(str(example["file"]))
        alone += _gets(example["volet"], choose(key, code, _without_example(volets, example["file"])))
    return {
        "examples": len(volet_map.get("examples", [])),
        "named_structured": len(named),
        "found": found,
        "found_without_own_example": alone,
        "missed": missed,
    }
