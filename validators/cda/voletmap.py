"""What a synced tree says about its CI-SIS volets, learned once at sync time and stored in the manifest.

Per volet Schematron (``CI-SIS_<volet>_<version>.sch``):
- the document-level templateIds its root and header (``Entete``) rules assert (1.2.250.1.213.1.1.1.x);
- the document types (``ClinicalDocument/code``) its header rules fix (e.g. OPH-CR-RTN: 75492-9);
- its names: the file name, its phase ids and the model names its title gives (``CI-SIS_CSE_MDE_2023.01``,
  ``F-PRC-AVK_2022.01``, ``VSM_1.4``), used to read the names of the reference examples;
- the reference examples the tree ships under its name (``ExemplesCDA/<volet>_<version>_*.xml``), and the
  templateId (root and version) each of them carries.

``volet_choice.py`` reads this map to choose a document's volet. Nothing here runs a Schematron.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from validators.cda.document import load
from validators.cda.repair import resolve_case_insensitive
from validators.safexml import parse_xml

SCH_NS = "http://purl.oclc.org/dsdl/schematron"
VOLET_ARC = "1.2.250.1.213.1.1.1."
GENERIC_CISIS = "1.2.250.1.213.1.1.1.1"
MAX_SCH_BYTES = 32 * 1024 * 1024
MAX_EXAMPLE_BYTES = 64 * 1024 * 1024
MAX_EXAMPLES = 2000
_VOLET_OID = re.compile(r"""['"](1\.2\.250\.1\.213\.1\.1\.1(?:\.\d+)+)['"]""")
# ClinicalDocument/code fixed by a header rule: ``cda:code[@code='X']`` as a step of the context node
# itself (``./cda:code`` or ``cda:code``), not the code of a deeper element (``.../cda:serviceEvent/cda:code``).
_TYPE_CODE = re.compile(r"""(?<![\w:/@.-])(?:\./)?cda:code\[\s*@code\s*=\s*['"]([^'"]+)['"]""")
_CLINICAL_DOCUMENT_CONTEXT = re.compile(r"^\s*/?cda:ClinicalDocument\s*$")
# A model name in a phase id or a title: letters, digits and dashes, then versions (``VSM_1.4``,
# ``AVC-AUNV_2.2_2022.01``, ``CSE_MDE_2023.01``).
_MODEL_NAME = re.compile(r"(?:CI-SIS_)?([A-Za-z][A-Za-z0-9-]*(?:_[A-Za-z0-9-]+)*_\d+(?:\.\d+)+)")


def normalise_name(name: str) -> str:
    """Names as the ANS writes them in files, phases and titles compare equal (case, ``-``/``_``)."""
    return re.sub(r"[-_\s]+", "-", name.removeprefix("CI-SIS_").removeprefix("CI-SIS-")).casefold()


def family_of(volet: str) -> str:
    return volet.rsplit("_", 1)[0]


def version_of(volet: str) -> str:
    return volet.rsplit("_", 1)[-1] if "_" in volet else ""


@dataclass
class VoletFacts:
    name: str
    template_ids: list[str] = field(default_factory=list)
    type_codes: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # other names: phase ids, model names of the title
    examples: list[dict[str, str]] = field(default_factory=list)  # {"file", "root", "extension"}

    def as_dict(self) -> dict[str, Any]:
        return {
            "template_ids": self.template_ids,
            "type_codes": self.type_codes,
            "names": self.names,
            "examples": self.examples,
        }


def _read_sch(path: Path) -> Any:
    if not path.is_file() or path.stat().st_size > MAX_SCH_BYTES:
        return None
    parsed = parse_xml(path.read_bytes(), max_bytes=MAX_SCH_BYTES)
    return parsed.root if parsed.ok else None


def header_files(files: list[str]) -> list[str]:
    """A volet's root file and its header (``Entete``) files: where document-level rules live."""
    return [name for index, name in enumerate(files) if index == 0 or "entete" in name.lower()]


def root_and_includes(tree: Path, sch: str) -> list[str]:
    """A schematron and the files its root includes directly (paths relative to ``tree``), for stores
    synced before the volet map was learned at sync time."""
    files = [sch]
    root = _read_sch(tree / sch)
    if root is None:
        return files
    for include in root.iter(f"{{{SCH_NS}}}include"):
        target = resolve_case_insensitive((tree / sch).parent, include.get("href") or "", tree)
        if target is not None:
            files.append(target.relative_to(tree).as_posix())
    return files


def asserted_template_ids(tree: Path, files: list[str]) -> list[str]:
    """Document-level CI-SIS templateIds a volet's root and header rules name."""
    found: set[str] = set()
    for name in header_files(files):
        path = tree / name
        if path.is_file() and path.stat().st_size <= MAX_SCH_BYTES:
            found.update(_VOLET_OID.findall(path.read_text("utf-8", errors="replace")))
    found.discard(GENERIC_CISIS)
    return sorted(found)


def asserted_type_codes(tree: Path, files: list[str]) -> list[str]:
    """Document types (ClinicalDocument/code/@code) the header rules fix, in rules on ClinicalDocument."""
    found: set[str] = set()
    for name in header_files(files):
        root = _read_sch(tree / name)
        if root is None:
            continue
        for rule in root.iter(f"{{{SCH_NS}}}rule"):
            if not _CLINICAL_DOCUMENT_CONTEXT.match(rule.get("context") or ""):
                continue
            for assertion in rule.iter(f"{{{SCH_NS}}}assert"):
                found.update(_TYPE_CODE.findall(assertion.get("test") or ""))
    return sorted(found)


def declared_names(sch: Path) -> list[str]:
    """Model names the schematron gives itself: its phase ids and the names its title cites."""
    root = _read_sch(sch)
    if root is None:
        return []
    texts = [phase.get("id") or "" for phase in root.iter(f"{{{SCH_NS}}}phase")]
    texts.append(root.get("defaultPhase") or "")
    texts += [" ".join("".join(title.itertext()).split()) for title in root.iter(f"{{{SCH_NS}}}title")]
    names: list[str] = []
    for text in texts:
        for match in _MODEL_NAME.finditer(text):
            if match.group(1) not in names:
                names.append(match.group(1))
        bare = text.removeprefix("CI-SIS_")
        if text and " " not in text and bare not in names:
            names.append(bare)  # a phase id without a version (``OPH-BRE``) still names the family
    return names


def document_facts(data: bytes) -> dict[str, Any] | None:
    """What the volet choice reads in a document: its key templateId, its type code, whether it is level 1."""
    document = load(data, max_bytes=MAX_EXAMPLE_BYTES, max_depth=256).document
    if document is None:
        return None
    key = key_template(document.template_ids())
    code = document.root.find("{urn:hl7-org:v3}code")
    return {
        "root": key[0] if key else None,
        "extension": key[1] if key else None,
        "code": (code.get("code") or "") if code is not None else "",
        "level1": document.is_level1,
    }


def key_template(template_ids: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    ids = [(root, ext) for root, ext in template_ids if root.startswith(VOLET_ARC) and root != GENERIC_CISIS]
    if not ids:
        return None
    # The one that carries the volet version as @extension; among those, the most specific root.
    return max(ids, key=lambda item: (bool(item[1]), len(item[0])))


def example_volet(stem: str, volets: dict[str, VoletFacts]) -> str | None:
    """The volet an example's file name names: its file name first, then its phase and title names."""
    wanted = normalise_name(stem)
    for use_declared in (False, True):
        best: tuple[int, str] | None = None
        for facts in volets.values():
            names = facts.names if use_declared else [facts.name]
            for name in names:
                norm = normalise_name(name)
                if (wanted == norm or wanted.startswith(norm + "-")) and (best is None or len(norm) > best[0]):
                    best = (len(norm), facts.name)
        if best is not None:
            return best[1]
    return None


def read_examples(examples: Path | None) -> list[dict[str, Any]]:
    """File name and key templateId of each reference example of a source tree (read while it is at hand:
    the store keeps these facts, not the examples)."""
    rows: list[dict[str, Any]] = []
    if examples is None or not examples.is_dir():
        return rows
    for path in sorted(examples.glob("*.xml"))[:MAX_EXAMPLES]:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_EXAMPLE_BYTES:
            continue
        facts = document_facts(path.read_bytes())
        if facts is not None:
            rows.append({"file": path.name, **facts})
    return rows


def learn(tree: Path, volet_files: dict[str, list[str]], examples: list[dict[str, Any]]) -> dict[str, Any]:
    """The volet map of ``tree``: ``volet_files`` maps each volet name to its schematron files (root first);
    ``examples`` are the source's reference examples (``read_examples``), each given to the volet it names."""
    volets: dict[str, VoletFacts] = {}
    for name, files in sorted(volet_files.items()):
        volets[name] = VoletFacts(
            name,
            template_ids=asserted_template_ids(tree, files),
            type_codes=asserted_type_codes(tree, files),
            names=declared_names(tree / files[0]),
        )
    rows = []
    for example in examples:
        volet = example_volet(Path(str(example["file"])).stem, volets)
        rows.append({**example, "volet": volet})
        if volet is not None and example["root"] and not example["level1"]:
            volets[volet].examples.append(
                {"file": str(example["file"]), "root": str(example["root"]), "extension": example["extension"] or ""}
            )
    return {"volets": {name: facts.as_dict() for name, facts in volets.items()}, "examples": rows}
