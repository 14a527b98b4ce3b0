"""Benchmark of e-mail proofs (run on demand: `make bench` or `python benchmarks/bench_email.py`).

Prints seconds per e-mail proof holding 5 attachments (a 1366x768 screenshot PNG, a 3-page PDF, a CSV, a
CDA-like XML, a DOCX) through the whole engine, with a private clamd and without the antivirus, as
median and p95 over --rounds runs; the e-mail check alone (parsing into children) on the same message;
the same content as an Outlook .msg; and the refusal of a 10 000-part bomb.
Options: --rounds N (default 10).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchjson import Results, add_json_option, p95

from fixtures import builders as b
from fixtures import emails
from fixtures.hostile import WORD_DOCUMENT, office_zip
from validators import sniff
from validators.base import CheckContext, ProofFile
from validators.dryrun import build_engine
from validators.engine import Engine
from validators.mail.check import MailValidator
from validators.ssi.antivirus import AntivirusValidator
from validators.ssi.clamd_manager import clamd_binary, private_clamd

CDA = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3"><title>CR fictif</title>'
    '<component><structuredBody><component><section><text>Examen normal.</text></section></component>'
    "</structuredBody></component></ClinicalDocument>\n"
)


def attachments() -> list[tuple[str, str, bytes]]:
    screenshot = b.make_screenshot(["Messagerie sécurisée de santé", "Message envoyé à 10:02", "Accusé reçu"])
    pdf = b.make_pdf(["Compte rendu (fictif)", "Page 2", "Page 3"])
    csv = ("date;acte;montant\n" + "".join(f"2026-03-{d:02d};consultation;25,00\n" for d in range(1, 29))).encode()
    docx = office_zip({"word/document.xml": WORD_DOCUMENT})
    return [
        ("capture.png", "image/png", screenshot),
        ("compte-rendu.pdf", "application/pdf", pdf),
        ("actes.csv", "text/csv", csv),
        ("cda.xml", "text/xml", CDA.encode()),
        ("courrier.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx),
    ]


def proof(name: str, data: bytes) -> ProofFile:
    return ProofFile(path=f"MSS.1.1.1/{name}", size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                     media_type=sniff.media_type(data), data=data, proof_id="MSS.1.1.1")


def timed(run: Callable[[], object], rounds: int) -> list[float]:
    run()  # warm-up: libraries loaded, clamd connection made
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        out.append(time.perf_counter() - start)
    return out


def report(results: Results, name: str, timings: list[float], note: str) -> None:
    print(f"{name}: median {statistics.median(timings):.3f} s  p95 {p95(timings):.3f} s  ({note})")
    results.add_timings(name, timings, note=note)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    add_json_option(parser)
    args = parser.parse_args()
    results = Results()
    files = attachments()
    eml = proof("message.eml", emails.eml(attachments=files))
    msg = proof("message.msg", emails.outlook_message(attachments=[(n, d) for n, _, d in files]))
    print(f"message: {eml.size} bytes (.eml), {msg.size} bytes (.msg), 5 attachments")

    mail = MailValidator()
    report(results, "e-mail check alone (.eml, 5 attachments)",
           timed(lambda: mail.check(eml, CheckContext()), args.rounds), "parsing into children")
    no_av = build_engine({})
    no_av = Engine([v for v in no_av.validators if not isinstance(v, AntivirusValidator)], no_av.ruleset)
    report(results, "e-mail proof, all checks but antivirus (.eml)",
           timed(lambda: no_av.check_file(eml), args.rounds), "children checked: OCR of the PNG included")
    report(results, "e-mail proof, all checks but antivirus (.msg)",
           timed(lambda: no_av.check_file(msg), args.rounds), "same content as an Outlook message")
    if clamd_binary() is None:
        print("ClamAV is not installed: the run with clamd is skipped")
    else:
        with tempfile.TemporaryDirectory() as tmp, private_clamd(Path(tmp)) as settings:
            full = build_engine(settings)
            report(results, "e-mail proof, all checks with clamd (.eml)",
                   timed(lambda: full.check_file(eml), args.rounds), "private clamd, test signatures")
    bomb = proof("bombe.eml", emails.part_bomb(10_000))
    timings = timed(lambda: mail.check(bomb, CheckContext()), max(3, args.rounds // 3))
    report(results, "10 000-part bomb refused (e-mail check)", timings, f"{bomb.size} bytes, refused before parsing")
    results.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
