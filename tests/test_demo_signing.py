"""The demo signs its verdicts like production, with a throwaway key whose public half it keeps."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.conftest_reports import sample_verdict
from validators.attest.keys import Keyring, load_signer
from validators.attest.seal import seal
from validators.attest.verify import verify
from validators.cli import main
from validators.report.json_report import to_document

pytest.importorskip("boto3")

from flows.devharness.demo import demo_signing_key


def test_the_demo_key_signs_verdicts_that_its_kept_public_half_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private = demo_signing_key(tmp_path / "secret", tmp_path / "demo-keys")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert [p.suffix for p in (tmp_path / "demo-keys").iterdir()] == [".pub"]  # no private half beside reports
    sealed = seal(to_document(sample_verdict()), load_signer(str(private)))
    assert verify(sealed.verdict, sealed.attestation, Keyring.from_paths([tmp_path / "demo-keys"])).ok
    verdict = tmp_path / "reports" / "rs.json"
    verdict.parent.mkdir()
    verdict.write_bytes(sealed.verdict)
    verdict.with_name("rs.intoto.jsonl").write_bytes(sealed.attestation)
    # the command the demo prints
    assert main(["verify", str(verdict), "--key", str(tmp_path / "demo-keys")]) == 0
    tampered = sealed.verdict.replace(b'"status"', b'"statut"', 1)
    verdict.write_bytes(tampered)
    assert main(["verify", str(verdict), "--key", str(tmp_path / "demo-keys")]) != 0
    capsys.readouterr()
