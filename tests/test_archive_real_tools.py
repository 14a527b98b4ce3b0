"""Archives written by the real tools publishers use (7-Zip, GNU tar, bsdtar) read without a finding.

Crafted archives test what the readers refuse; these test that ordinary ones are not refused. The tools
are installed by ``tools/install-system-deps.sh --tests``; a missing one skips its cases.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures import builders
from validators.archive import ArchiveValidator
from validators.base import ProofFile
from validators.engine import Engine
from validators.model import FileVerdict, Status

COMMANDS = {
    "default.7z": ["7zz", "a", "-bd", "{out}", "."],
    "ultra.7z": ["7zz", "a", "-bd", "-mx9", "{out}", "."],
    "nonsolid.7z": ["7zz", "a", "-bd", "-ms=off", "{out}", "."],
    "ppmd.7z": ["7zz", "a", "-bd", "-m0=PPMd", "{out}", "."],
    "bzip2.7z": ["7zz", "a", "-bd", "-m0=BZip2", "{out}", "."],
    "deflate.7z": ["7zz", "a", "-bd", "-m0=Deflate", "{out}", "."],
    "copy.7z": ["7zz", "a", "-bd", "-m0=Copy", "{out}", "."],
    "7zip.zip": ["7zz", "a", "-bd", "-tzip", "{out}", "."],
    "gnu.tar.gz": ["tar", "czf", "{out}", "."],
    "posix.tar.xz": ["tar", "--format=posix", "-cJf", "{out}", "."],
    "bsd.tgz": ["bsdtar", "-czf", "{out}", "."],
    "bsd-pax.tar": ["bsdtar", "--format=pax", "-cf", "{out}", "."],
    "bsd.tar.bz2": ["bsdtar", "-cjf", "{out}", "."],
}
LONG_NAME = "INS.41.2.2/" + "n" * 120 + ".pdf"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("src")
    folder = root / "INS.41.2.2" / "Capture d’écran été"
    folder.mkdir(parents=True)
    (root / "vide").mkdir()
    (folder / "écran.png").write_bytes(builders.make_screenshot(["Écran fictif"]))
    (root / LONG_NAME).write_bytes(builders.make_pdf(["Compte rendu fictif"]))
    lines = (f"2026-03-{1 + i % 28:02d} 10:{i % 60:02d}:{i * 7 % 60:02d} INFO envoi {i * 7919 % 100_003}\n"
             for i in range(50_000))
    (root / "INS.41.2.2" / "trace.log").write_text("".join(lines), encoding="utf-8")
    (root / "INS.41.2.2" / "vide.txt").write_bytes(b"")
    return root


def check(data: bytes, name: str) -> FileVerdict:
    file = ProofFile(path=f"INS.41.2.2/{name}", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type="application/octet-stream", data=data)
    return Engine([ArchiveValidator()]).check_file(file)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_archives_of_real_tools_pass_with_every_file_as_a_child(name: str, source: Path, tmp_path: Path) -> None:
    command = COMMANDS[name]
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed (tools/install-system-deps.sh --tests)")
    out = tmp_path / name
    subprocess.run([part.format(out=out) for part in command], cwd=source, check=True, capture_output=True)
    verdict = check(out.read_bytes(), name)
    assert verdict.findings == () and verdict.status is Status.PASS
    names = {c.path.split(":", 1)[1].removeprefix("./") for c in verdict.children}
    assert names == {"INS.41.2.2/Capture d’écran été/écran.png", LONG_NAME, "INS.41.2.2/trace.log",
                     "INS.41.2.2/vide.txt"}
