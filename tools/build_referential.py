"""Derive the proof list of the LGC Va1 referential from the ID crosswalk in ``../shared/rem``.

Run ``python tools/build_referential.py [REM_DIR]``: it rewrites
``validators/referentials/REM-MDV-LGC-SF-Va1.yaml``. Only facts are taken from the crosswalk (proof
ids, profiles, natures, Va2 republication aliases); titles are composed here in our own words, and
the ANS wording of requirements, scenarios and proofs is never copied. The header of the data file
(profiles, sections, natures) is kept in this script so that a re-run is reproducible.
"""

from __future__ import annotations

import csv
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "validators" / "referentials" / "REM-MDV-LGC-SF-Va1.yaml"

# Heuristic natures of the crosswalk -> our vocabulary (validators/referentials/README.md).
NATURES = {
    "video": ["video"],
    "capture_ecran": ["screenshot"],
    "demonstration_mixte": ["video", "screenshot"],
    "logs_traces": ["log"],
    "source_smtp": ["eml"],
    "document_pdfa": ["pdf"],
    "extrait_configuration_code": ["config"],
    "justificatif_cnda_autorisation": ["attestation"],
    "attestation_engagement_declaration": ["attestation"],
    "fichier_extraction_tdb": ["extract"],
    "lien_permanent_evs": ["evs-link"],
    "fichier_cda_xml": ["cda"],
    "archive_xdm": ["xdm"],
    "documentation": ["documentation"],
    "scan_edition": ["scan"],
}

NATURE_WORDS = {
    "video": "video of the scenario",
    "screenshot": "screenshot",
    "log": "log or trace extract",
    "eml": "raw source of the sent message",
    "pdf": "generated PDF/A document",
    "config": "configuration or code extract",
    "attestation": "approval or authorisation certificate",
    "extract": "data extract or integration report",
    "evs-link": "link to the ANS test-bench validation report",
    "cda": "CDA document",
    "xdm": "IHE XDM archive",
    "documentation": "technical documentation",
    "scan": "scan of the printed output",
}

SECTION_WORDS = {
    "ANN": "Health directory",
    "APCV": "ApCV",
    "BIO": "Lab results",
    "DMP": "DMP",
    "DOC": "Documents",
    "ERGO": "Ergonomics",
    "INS": "INS",
    "MSS": "MSSanté",
    "PORT": "Portability",
    "PSC": "Pro Santé Connect",
    "TBB": "Dashboard",
    "ePresc": "e-prescription",
}

# Proofs that deserve a precise title, in our words.
TITLES = {
    "INS.1.1.1": "Identity creation showing every INS field",
    "INS.1.4.1": "Screen showing the reimbursement number apart from the INS",
    "INS.2.1.1": "Identity banner with the mandatory fields",
    "INS.41.1.1": "INSi lookup from the Vitale card and its call log",
    "INS.41.2.2": "How the INSi lookup by identity traits is launched",
    "INS.43.1.1": "Identity check with an INSi failure answer",
    "INS.48.1.1": "INSi call whose answer is not integrated",
    "INS.49.1.1": "CNDA authorisation for the INSi verification",
    "INS.52.1.1": "How stored ID-document copies are encrypted and purged",
    "INS.53.1.1": "INSi call authenticated with an RPPS-rang certificate",
    "INS.57.1.1": "Scan of a printout carrying the INS datamatrix",
    "DMP.1.1.1": "Automatic DMP feed once a document is validated",
    "DMP.1.1.2": "Document seen in the DMP training web access",
    "DMP.4.1.1": "Authorisation for the DMP feeding service",
    "DOC.1.1.1": "Prescription as a PDF/A-1",
    "DOC.2.1.1": "Test-bench report for a level-1 CDA report",
    "DOC.3.1.1": "Follow-up letter as a PDF/A-1 with structured INS and datamatrix",
    "DOC.3.1.2": "Screen proving the INS was qualified",
    "DOC.6.1.1": "Letter with the GDPR patient notice",
    "DOC.7.1.1": "Test-bench report for the medical summary (VSM)",
    "MSS.21.1.1": "Test-bench report for the XDM archive sent by MSSanté",
    "MSS.21.1.2": "The PDF/A-1 sent by MSSanté",
    "MSS.21.1.3": "SMTP source of the message sent to the operator",
    "MSS.3.1.2": "TLS connection log to the MSSanté operator",
    "MSS.9.1.1": "Configured URLs of the Mailiz DST interface",
    "ANN.1.1.1": "Health directory import report",
    "TBB.1.1.3": "Extracts of the dashboard indicators",
    "ERGO.5.1.1": "Terms of use as a text file",
    "PSC.1.1.1": "Pro Santé Connect login, web client",
    "PSC.1.4.1": "Pro Santé Connect login, desktop client",
    "ePresc.1.1.1": "Authorisation for the e-prescription service",
}

# Document types a CDA proof must carry (code, code system), where the referential implies one.
DOCUMENT_TYPES = {
    "DOC.7.1.1": [{"code": "60591-5", "code_system": "2.16.840.1.113883.6.1", "label": "VSM"}],
}

# Proofs the crosswalk lists as ambiguous but that the ANS's own texts identify (the PSC proof text
# refers to "PSC 1.1.1" and "PSC 1.4.1"; the INS.03 row carries only its scenario numbers).
RESOLVED = [
    ("PSC.1.1.1", "PSC/va1.01.01.01", "Général", "video"),
    ("PSC.1.2.1", "PSC/va1.01.02.01", "Général", "video"),
    ("PSC.1.3.1", "PSC/va1.01.03.01", "Général", "video"),
    ("PSC.1.4.1", "PSC/va1.01.04.01", "Général", "video"),
    ("INS.3.1.1", "INS/va1.39.01.01", "Général", "logs_traces|video|capture_ecran|demonstration_mixte"),
]

# A Va2 requirement that republishes several Va1 requirements at once: its ids cannot be mapped.
UNRESOLVED = {"INS/va1.60": ["INS.32", "INS.33", "INS.34", "INS.35", "INS.36"]}

HEADER: dict[str, Any] = {
    "format": 1,
    "id": "REM-MDV-LGC-SF-Va1",
    "title": "Ségur, Médecine de ville, LGC (practice management software), wave 1",
    "id_style": {"zero_pad": 0},
    "crosswalk_marker": "va1",
    "squash_prefixes": ["LGC", "SC", "CH"],
    "profiles": [
        {"name": "Général", "mandatory": True, "aliases": ["general", "generale", "socle"]},
        {"name": "Centres de santé", "aliases": ["centre de sante", "cds"]},
        {"name": "Opérateur Mailiz", "aliases": ["mailiz", "operateur mailiz"]},
        {"name": "Stockage des copies de titres d'identité",
         "aliases": ["stockage des titres d'identite", "stockage titres"]},
        {"name": "Médecin traitant", "aliases": ["medecin-traitant", "mt"]},
        {"name": "Référentiel d'identités", "aliases": ["referentiel d'identite", "referentiel identites"]},
    ],
    "sections": {code: {"title": words} for code, words in SECTION_WORDS.items()},
    "natures": {
        "video": {"extensions": ["mp4", "webm", "mov", "m4v", "mkv", "avi"]},
        "screenshot": {"extensions": ["png", "jpg", "jpeg", "pdf"]},
        "log": {"extensions": ["log", "txt", "csv", "json", "xml", "hl7"]},
        "eml": {"extensions": ["eml", "txt"]},
        "pdf": {"extensions": ["pdf"]},
        "config": {"extensions": ["txt", "properties", "conf", "cfg", "ini", "xml", "json", "yaml", "yml",
                                  "log", "pdf", "png", "jpg", "jpeg"]},
        "attestation": {"extensions": ["pdf", "png", "jpg", "jpeg"]},
        "extract": {"extensions": ["csv", "txt", "pdf", "json", "xml", "log"]},
        "evs-link": {"extensions": ["txt", "url", "pdf", "xml", "html"]},
        "cda": {"extensions": ["xml"]},
        "xdm": {"extensions": ["zip"]},
        "documentation": {"extensions": ["pdf", "txt", "md"]},
        "scan": {"extensions": ["pdf", "png", "jpg", "jpeg", "tif", "tiff"]},
    },
    # A zip may bundle the files of any proof (several screenshots, for instance).
    "container_extensions": ["zip"],
}


def _natures(heuristic: str) -> list[str]:
    out: list[str] = []
    for part in heuristic.split("|"):
        for nature in NATURES.get(part, []):
            if nature not in out:
                out.append(nature)
    return out


def _title(proof_id: str, natures: list[str]) -> str:
    if proof_id in TITLES:
        return TITLES[proof_id]
    section, req, scenario, _ = proof_id.split(".")
    if natures[:2] == ["video", "screenshot"] or natures[:2] == ["log", "video"]:
        what = "demonstration (video or screenshots)"
    else:
        what = NATURE_WORDS[natures[0]] if natures else "proof"
    return f"{SECTION_WORDS[section]} requirement {req}, scenario {scenario}: {what}"


def build(rem_dir: Path) -> dict[str, Any]:
    merged: dict[str, dict[str, Any]] = defaultdict(lambda: {"profiles": [], "nature": [], "aliases": []})
    rows = [
        (r["va1_preuve_inferee"], r["va2_reprise_preuve"], r["profil"], r["nature_heuristique"])
        for r in csv.DictReader((rem_dir / "lgc_va1_proof_id_crosswalk.csv").open(encoding="utf-8"))
        if r["statut"] == "inferred" and re.fullmatch(r"[A-Za-z]+\.\d+\.\d+\.\d+", r["va1_preuve_inferee"])
    ]
    for proof_id, alias, profile, heuristic in [*rows, *RESOLVED]:
        entry = merged[proof_id]
        for key, values in (("profiles", [profile]), ("nature", _natures(heuristic)), ("aliases", [alias])):
            for value in values:
                if value and value not in entry[key]:
                    entry[key].append(value)

    def order(proof_id: str) -> tuple[str, int, int, int]:
        section, *numbers = proof_id.split(".")
        return (section.upper(), *(int(n) for n in numbers))  # type: ignore[return-value]

    proofs: dict[str, Any] = {}
    for proof_id in sorted(merged, key=order):
        entry = merged[proof_id]
        out = {"title": _title(proof_id, entry["nature"]), "profiles": entry["profiles"],
               "nature": entry["nature"], "aliases": entry["aliases"]}
        if proof_id in DOCUMENT_TYPES:
            out["document_types"] = DOCUMENT_TYPES[proof_id]
        proofs[proof_id] = out
    return {**HEADER, "unresolved_aliases": UNRESOLVED, "proofs": proofs}


def main(argv: list[str]) -> int:
    rem_dir = Path(argv[1]) if len(argv) > 1 else ROOT.parent / "shared" / "rem"
    data = build(rem_dir)
    header = (
        "# LGC Va1 referential: proof ids and what each proof should be, derived from public facts\n"
        "# (ID crosswalk of the ANS Squash exports) by tools/build_referential.py. Titles are ours.\n"
        "# Format: validators/referentials/README.md\n"
    )
    body = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=110, default_flow_style=None)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(header + body, encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {len(data['proofs'])} proofs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
