"""Benign proofs and packages of the kinds publishers send, built with the project's generators.

What the benchmarks feed the checks, so that every check runs on what it will meet (issue 17): screenshots
of a practice-management program whose text only OCR can read (``fixtures.builders.make_screenshot``),
PDF reports with text (``make_pdf``), a structured CDA document of the VAC_2023.01 volet and a level-1
CDA carrying a PDF (``fixtures.cda_docs``), an e-mail with a screenshot, a PDF and a DOCX attached
(``make_eml``; the DOCX with the parts Word needs), and an H.264 screen recording made by ffmpeg from
such screenshots (a new screen every few seconds, a pointer moving).
Fictitious data only (the ANS test identity), and no number a personal-data check should flag.

Every call draws new text from its ``random.Random``, so no two proofs have the same bytes: clamd keeps
a cache of clean files by hash, and a benchmark that scanned the same bytes twice would measure the cache.
Videos are the bulk of a package's bytes; encoding them is slow, so a few base clips are encoded once
(kept in ``var/bench/media``) and each copy gets a unique trailing ``free`` box (an MP4 top-level box
players skip), which makes it new bytes to clamd at no encoding cost.
"""

from __future__ import annotations

import io
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fixtures import builders as b  # noqa: E402
from fixtures import cda_docs  # noqa: E402
from fixtures.packages import manifest  # noqa: E402

MEDIA_DIR = ROOT / "var" / "bench" / "media"
MB = 1_000_000
CLIP_MEGABYTES = (5, 10, 20, 32, 48)  # base clips (2 Mbit/s: 4 s of video per MB)

_SCREENS = [
    "Agenda du Dr Démo — semaine {week}", "Consultation de {hour} h {minute:02d} : patient de test",
    "Dossier : PAT-TROIS Dominique (identité de test de l'ANS)", "Statut de l'identité : identité qualifiée",
    "Ordonnance n° {small} enregistrée", "Document envoyé au DMP : accusé de réception reçu",
    "Messagerie sécurisée : {small} messages non lus", "Téléservice INSi : identité récupérée ({hour} h)",
    "Compte rendu signé électroniquement", "Paramètres > Interopérabilité > DMP",
    "Historique des vaccinations mis à jour", "Alerte : allergie déclarée (pénicilline)",
]
_TEXT = [
    "Compte rendu de consultation (document de démonstration).", "Examen clinique sans particularité.",
    "Traitement poursuivi à l'identique.", "Patient : PAT-TROIS Dominique, identité de test de l'ANS.",
    "Résultats transmis au médecin traitant.", "Prochain rendez-vous dans {small} jours.",
    "Rapport d'intégration : {small} lignes lues, aucun rejet.", "Tension artérielle {hour}/8, pouls {minute}.",
]
# The three parts Word needs to open a document: without the relationships and the main part's content
# type, libmagic (and the filetype check) sees a plain zip.
_DOCX_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/'
    b'document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.'
    b'main+xml"/></Types>'
)
_DOCX_RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
    b'2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
    b'2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
_WORD = (
    '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
    'wordprocessingml/2006/main"><w:body>{paragraphs}</w:body></w:document>'
)


def _line(rng: random.Random, templates: list[str]) -> str:
    return rng.choice(templates).format(week=rng.randint(1, 52), hour=rng.randint(8, 18),
                                        minute=rng.randint(0, 59), small=rng.randint(2, 999))


def screenshot(rng: random.Random) -> bytes:
    """A 1366x768 PNG with 8-14 lines of 12-16 px text: readable only through OCR."""
    lines = [_line(rng, _SCREENS) for _ in range(rng.randint(8, 14))]
    return b.make_screenshot(lines, font_px=rng.choice([12, 13, 14, 16]))


def text_pdf(rng: random.Random, pages: int = 3) -> bytes:
    return b.make_pdf(["\n".join(_line(rng, _TEXT) for _ in range(rng.randint(10, 30))) for _ in range(pages)],
                      info_title=f"Compte rendu {rng.randint(1, 9999)}")


def cda_structured(rng: random.Random) -> bytes:
    """The conformant VAC_2023.01 document, under a document id of its own."""
    document = cda_docs.vaccination_history()
    old = f'root="{cda_docs.DOCUMENT_OID}.37'.encode()
    return document.replace(old, f'root="{cda_docs.DOCUMENT_OID}.{rng.randint(1000, 10**9)}'.encode())


def cda_level1(rng: random.Random) -> bytes:
    return cda_docs.level1_document(text_pdf(rng, pages=2))


def docx(rng: random.Random) -> bytes:
    paragraphs = "".join(f"<w:p><w:r><w:t>{_line(rng, _TEXT)}</w:t></w:r></w:p>" for _ in range(12))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _DOCX_TYPES)
        archive.writestr("_rels/.rels", _DOCX_RELS)
        archive.writestr("word/document.xml", _WORD.format(paragraphs=paragraphs).encode())
    return out.getvalue()


def email(rng: random.Random) -> bytes:
    """An .eml as a publisher exports it: a body and three attachments (screenshot, PDF, DOCX)."""
    body = "\n".join(_line(rng, _TEXT) for _ in range(6))
    attachments = [
        ("capture.png", "image/png", screenshot(rng)),
        ("compte-rendu.pdf", "application/pdf", text_pdf(rng, pages=2)),
        ("courrier.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx(rng)),
    ]
    return b.make_eml(f"Compte rendu {rng.randint(1, 9999)}", body, attachments)


CLIP_BITRATE = 2_000_000  # bits per second: a 1366x768 screen recording as recorders write it
SCENE_SECONDS = 4  # a new screen every 4 s (a click, a page): what the video check reads


def _encode_clip(megabytes: int, target: Path) -> None:
    """A screen recording: a new screen of the program every ``SCENE_SECONDS`` with a pointer moving over
    it, at a constant ``CLIP_BITRATE`` (the encoder pads static stretches), as long as the size asks for.

    Until issue 17's second run the clip was a test pattern under full-frame noise: every sampled frame
    changed everywhere, so the video check OCR'd each of them (180 s for a 10 s clip on this machine, a
    worst case no screen recording comes near).
    """
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is not installed: no video proof can be made (apt-get install ffmpeg)")
    seconds = max(SCENE_SECONDS, round(megabytes * MB * 8 / CLIP_BITRATE))
    rng = random.Random(f"clip-{megabytes}")  # noqa: S311 (benchmark input, not a secret)
    partial = target.with_suffix(".partial.mp4")
    with tempfile.TemporaryDirectory(prefix="clip-") as folder:
        scenes = []
        for index in range(-(-seconds // SCENE_SECONDS)):
            path = Path(folder) / f"scene-{index:03d}.png"
            path.write_bytes(screenshot(rng))
            scenes.append(f"file '{path}'\nduration {SCENE_SECONDS}\n")
        listing = Path(folder) / "scenes.txt"
        listing.write_text("".join(scenes) + f"file '{path}'\n")  # the concat demuxer's last entry
        rate = str(CLIP_BITRATE)
        subprocess.run(
            [ffmpeg, "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
             "-vf", "fps=25,drawbox=x='mod(t*180,1300)':y='300+120*sin(t)':w=12:h=18:color=black:t=fill",
             "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-b:v", rate, "-minrate", rate,
             "-maxrate", rate, "-bufsize", rate, "-x264-params", "nal-hrd=cbr", "-pix_fmt", "yuv420p",
             "-movflags", "+faststart", str(partial)],
            check=True, timeout=900,
        )
    partial.rename(target)


def base_clip(megabytes: int) -> bytes:
    """A base clip of about ``megabytes`` MB (encoded once, then kept in ``var/bench/media``)."""
    target = MEDIA_DIR / f"screen-recording-{megabytes}mb.mp4"
    if not target.is_file():
        MEDIA_DIR.mkdir(parents=True, exist_ok=True)
        _encode_clip(megabytes, target)
    return target.read_bytes()


def video(rng: random.Random, megabytes: int = CLIP_MEGABYTES[0]) -> bytes:
    """A base clip made unique by a trailing ``free`` box of random bytes."""
    payload = rng.randbytes(64)
    return base_clip(megabytes) + struct.pack(">I", 8 + len(payload)) + b"free" + payload


# One of each kind: what the SSI benchmark scans (name, media type, maker).
MIX: list[tuple[str, str, Callable[[random.Random], bytes]]] = [
    ("capture-1.png", "image/png", screenshot),
    ("capture-2.png", "image/png", screenshot),
    ("rapport.pdf", "application/pdf", text_pdf),
    ("historique_vaccination.xml", "text/xml", cda_structured),
    ("compte_rendu_niveau1.xml", "text/xml", cda_level1),
    ("message.eml", "message/rfc822", email),
    ("courrier.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx),
    ("enregistrement.mp4", "video/mp4", video),
]


def benign_mix(rng: random.Random) -> dict[str, tuple[str, bytes]]:
    """{name: (media type, bytes)}: one proof of each kind, all new bytes."""
    return {name: (media_type, make(rng)) for name, media_type, make in MIX}


# Proof folders of a package and what goes in each (proof IDs of REM-MDV-LGC-SF-Va1).
_LAYOUT: list[tuple[str, str, Callable[[random.Random], bytes]]] = [
    ("INS.1.1.1", "creation_identite.png", screenshot),
    ("INS.1.1.1", "identite_qualifiee.png", screenshot),
    ("DMP.3.1.1", "envoi_dmp.png", screenshot),
    ("ANN.1.1.1", "rapport_integration.pdf", text_pdf),
    ("MSS.2.1.1", "historique_vaccination.xml", cda_structured),
    ("MSS.2.1.2", "compte_rendu.xml", cda_level1),
    ("MSS.1.1.1", "message.eml", email),
]


def package(rng: random.Random, megabytes: float) -> bytes:
    """A zip of about ``megabytes`` MB: the proofs of ``_LAYOUT`` (about 1 MB), the screen recording of
    ``CLIP_MEGABYTES`` closest to the rest of the size, and the manifest (so about 6 to 49 MB)."""
    files: dict[str, bytes] = {}
    proofs: dict[str, list[str]] = {}
    for proof_id, name, make in _LAYOUT:
        path = f"{proof_id}/{proof_id}_{name}"
        files[path] = make(rng)
        proofs.setdefault(proof_id, []).append(path)
    rest = megabytes * MB - sum(len(data) for data in files.values())
    clip = min(CLIP_MEGABYTES, key=lambda m: abs(m * MB - rest))
    recording = f"DOC.1.1.1/DOC.1.1.1_enregistrement_{clip}mb.mp4"
    files[recording] = video(rng, clip)
    proofs["DOC.1.1.1"] = [recording]
    files["manifest.yaml"] = manifest(proofs)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path, data in files.items():
            # Videos and images are stored: they do not compress, and publishers' zip tools store them.
            method = zipfile.ZIP_STORED if path.endswith((".mp4", ".png")) else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo(path, date_time=(2026, 3, 2, 10, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compress_type=method)
    return out.getvalue()


def package_sizes(rng: random.Random, count: int, low: float = 5.0, high: float = 50.0) -> list[float]:
    """``count`` sizes in MB, log-uniform between ``low`` and ``high`` (many small packages, a few large)."""
    import math

    return [math.exp(rng.uniform(math.log(low), math.log(high))) for _ in range(count)]


__all__ = ["MIX", "benign_mix", "package", "package_sizes", "screenshot", "text_pdf", "video"]
