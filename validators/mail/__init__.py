"""The ``email`` check: e-mail proofs read as containers (RFC 5322/MIME, mbox, SMTP transcripts, Outlook
``.msg``, TNEF ``winmail.dat``, S/MIME and PKCS #7).

Every body part and attachment becomes a child file that every other check sees (antivirus, type and
name, active content, personal data); what cannot be opened (encrypted S/MIME, a limit passed, a broken
structure) is a finding, never a silent pass. Modules: ``detect`` (which files), ``mime``,
``transcripts``, ``outlook``, ``tnef``, ``smime`` (readers), ``headers`` and ``names`` (what is shown to
a person), ``harvest`` and ``limits`` (budgets), ``check`` (the validator).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from validators.base import Validator


def make_validators(settings: Mapping[str, Any]) -> list[Validator]:
    from validators.registry import family_validators

    return family_validators(__name__, settings)
