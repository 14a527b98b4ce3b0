"""Mutated e-mail containers never make the e-mail check raise or hang: a finding and a verdict instead."""

from __future__ import annotations

import hashlib
from functools import cache

from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_support import fuzz_settings

from fixtures import builders as b
from fixtures import emails
from fixtures.hostile import pe
from validators import sniff
from validators.base import CheckContext, CheckResult, ProofFile
from validators.mail.check import MailValidator

CHECK = MailValidator()


@cache
def seeds() -> dict[str, bytes]:
    report = b.make_pdf(["x"])
    return {
        "message.eml": emails.eml(html="<p>x</p>", attachments=[("CR.pdf", "application/pdf", report)]),
        "signed.eml": emails.signed_message(emails.message(attachments=[("CR.pdf", "application/pdf", report)])),
        "opaque.p7m": emails._pkcs7(b"Content-Type: text/plain\r\n\r\nx", detached=False),
        "message.msg": emails.outlook_message(attachments=[("a.exe", pe())], embedded=[("s", "t", [])]),
        "winmail.dat": emails.tnef([("a.pdf", report)]),
        "session.txt": emails.smtp_transcript(emails.eml()),
    }


@fuzz_settings(deadline_ms=5000)
@given(
    st.sampled_from(sorted(seeds())),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), max_size=12),
    st.integers(min_value=0),
)
def test_mutated_containers_give_a_result(name: str, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seeds()[name])
    for offset, value in flips:
        data[offset % len(data)] = value
    data = data[: max(1, len(data) - cut % 64)] if cut % 3 == 0 else data
    content = bytes(data)
    file = ProofFile(path=name, size=len(content), sha256=hashlib.sha256(content).hexdigest(),
                     media_type=sniff.media_type(content), data=content)
    if CHECK.applies_to(file):
        assert isinstance(CHECK.check(file, CheckContext()), CheckResult)
