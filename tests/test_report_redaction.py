"""A NIR a publisher put in a file, folder, member or attachment name is reported, never repeated.

The verdict's paths, findings' locations, messages and evidence all come from names the package chose;
every report (JSON, HTML, SARIF, JUnit) is rendered from them.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from validators.dryrun import dry_run
from validators.pii.mask import mask_identifiers
from validators.pii.nir import nir_key

BODY = "1850578006084"
NIR = BODY + f"{nir_key(BODY):02d}"
SPACED = f"{NIR[0]} {NIR[1:3]} {NIR[3:5]} {NIR[5:7]} {NIR[7:10]} {NIR[10:13]} {NIR[13:]}"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


def _leaks(text: str) -> list[str]:
    """NIR digits found in ``text``: the body, or any 7 of its digits in a row, with or without blanks."""
    squeezed = "".join(c for c in text if c.isdigit() or c.isalpha() or c in "\n")
    return [BODY[i : i + 7] for i in range(len(BODY) - 6) if BODY[i : i + 7] in squeezed]


@pytest.mark.parametrize("name", [f"capture {SPACED}.txt", f"patient_{NIR}.txt", f"{BODY}/journal.txt"])
def test_mask_identifiers_masks_every_written_form(name: str) -> None:
    masked = mask_identifiers(name)
    assert masked != name and not _leaks(masked)
    plain = "INS.41.2.2/capture-2024-09-27 12.00.00.png"
    assert mask_identifiers(plain) == plain


@pytest.mark.parametrize("fmt", ["json", "html", "sarif", "junit"])
def test_a_nir_in_names_never_reaches_a_report(tmp_path: Path, fmt: str) -> None:
    from validators.cli import _renderer

    proof = tmp_path / f"INS.41.2.2 dossier {NIR}"
    proof.mkdir()
    (proof / f"journal {SPACED}.txt").write_text("journal de test fictif\n", encoding="utf-8")
    member = io.BytesIO()
    with zipfile.ZipFile(member, "w") as archive:
        archive.writestr(f"capture_{NIR}.txt", "rien\n")
        archive.writestr(f"../{NIR}.txt", "rien\n")
    (proof / "captures.zip").write_bytes(member.getvalue())
    verdict = dry_run(tmp_path, settings={"clamd": "unix:/nonexistent/clamd.sock"})
    assert any(rule.startswith("pii.") for rule, _ in verdict.flatten(["rule", "path"]))
    text = _renderer(fmt)(verdict)
    assert not _leaks(text), f"NIR digits in the {fmt} report"
