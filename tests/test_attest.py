"""Signed verdicts: DSSE + in-toto sealing, offline verification, rotation, hash chains and the ledger."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest_reports import sample_verdict
from validators.attest import dsse
from validators.attest.chain import GENESIS, ChainEntry, LedgerRow, check_chain, check_ledger, running_digest
from validators.attest.keys import Ed25519Signer, KeyProblem, Keyring, init_key, load_signer
from validators.attest.seal import seal
from validators.attest.statement import PREDICATE_TYPE, STATEMENT_TYPE, sha256_hex
from validators.attest.verify import verify
from validators.cli import main
from validators.report.json_report import to_document


def _doc(name: str = "lgc-demo.zip") -> dict[str, Any]:
    doc = to_document(sample_verdict())
    doc["package"]["name"] = name
    doc["package"]["sha256"] = sha256_hex(name.encode())
    return doc


def _codes(result: Any) -> list[str]:
    return [p.code for p in result.problems]


@pytest.fixture(scope="module")
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate()


def test_a_sealed_verdict_verifies_and_names_what_produced_it(signer: Ed25519Signer) -> None:
    sealed = seal(_doc(), signer)
    assert sealed.attestation is not None
    result = verify(sealed.verdict, sealed.attestation, Keyring.of([signer.private_key.public_key()]))
    assert result.ok, result.problems
    doc = json.loads(sealed.verdict)
    assert doc["attestation"]["keyid"] == signer.keyid and "BEGIN PUBLIC KEY" in doc["attestation"]["public_key"]
    assert result.facts["ruleset"] == doc["ruleset"]["version"] and result.facts["engine"] == doc["engine"]["version"]
    statement = json.loads(dsse.parse(sealed.attestation).payload)
    assert statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"][0] == {"name": "lgc-demo.zip", "digest": {"sha256": doc["package"]["sha256"]}}
    files = {s["name"] for s in statement["subject"][1:]}
    assert files and all(name.startswith("lgc-demo.zip/") for name in files)
    assert statement["predicate"]["verdict"]["digest"]["sha256"] == sha256_hex(sealed.verdict)


def test_one_byte_changed_in_the_verdict_is_reported(signer: Ed25519Signer) -> None:
    sealed = seal(_doc(), signer)
    assert sealed.attestation is not None
    tampered = sealed.verdict.replace(b'"status": "fail"', b'"status": "pass"', 1)
    assert tampered != sealed.verdict
    result = verify(tampered, sealed.attestation, Keyring.of([signer.private_key.public_key()]))
    assert _codes(result) == ["verdict-altered"]
    flipped = bytearray(sealed.verdict)
    flipped[len(flipped) // 2] ^= 0x01
    assert _codes(verify(bytes(flipped), sealed.attestation, Keyring.of([signer.private_key.public_key()]))) in (
        ["verdict-altered"], ["other-package"])


def test_an_attestation_of_another_package_is_named_as_such(signer: Ed25519Signer) -> None:
    mine, theirs = seal(_doc("a.zip"), signer), seal(_doc("b.zip"), signer)
    assert theirs.attestation is not None
    result = verify(mine.verdict, theirs.attestation, Keyring.of([signer.private_key.public_key()]))
    assert _codes(result) == ["other-package"]


def test_wrong_key_and_altered_signature(signer: Ed25519Signer) -> None:
    sealed = seal(_doc(), signer)
    assert sealed.attestation is not None
    stranger = Ed25519Signer.generate()
    assert _codes(verify(sealed.verdict, sealed.attestation, Keyring.of([stranger.private_key.public_key()]))) == [
        "untrusted-key"]
    envelope = json.loads(sealed.attestation)
    payload = json.loads(dsse.parse(sealed.attestation).payload)
    payload["predicate"]["verdict"]["status"] = "pass"
    envelope["payload"] = dsse.base64.b64encode(json.dumps(payload).encode()).decode()
    forged = json.dumps(envelope).encode()
    assert _codes(verify(sealed.verdict, forged, Keyring.of([signer.private_key.public_key()]))) == ["bad-signature"]


def test_a_verdict_resigned_by_an_attacker_with_his_own_key_is_refused(signer: Ed25519Signer) -> None:
    """The key embedded in a verdict is never trusted by itself."""
    attacker = Ed25519Signer.generate()
    doc = _doc()
    doc["status"] = "pass"
    forged = seal(doc, attacker)
    assert forged.attestation is not None
    result = verify(forged.verdict, forged.attestation, Keyring.of([signer.private_key.public_key()]))
    assert _codes(result) == ["untrusted-key"]


def test_rotation_keeps_old_verdicts_verifiable(tmp_path: Path) -> None:
    old = init_key(tmp_path, "old")
    old_sealed = seal(_doc(), load_signer(str(old.private)))
    new = init_key(tmp_path, "new")
    new_sealed = seal(_doc(), load_signer(str(new.private)))
    both = Keyring.from_paths([tmp_path])
    assert len(both) == 2
    for sealed in (old_sealed, new_sealed):
        assert sealed.attestation is not None and verify(sealed.verdict, sealed.attestation, both).ok
    only_new = Keyring.from_paths([new.public])
    assert old_sealed.attestation is not None
    assert _codes(verify(old_sealed.verdict, old_sealed.attestation, only_new)) == ["untrusted-key"]
    assert (old.private.stat().st_mode & 0o777) == 0o600
    with pytest.raises(KeyProblem):
        init_key(tmp_path, "old")  # never overwritten


def test_unusable_key_files_are_one_line_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    with pytest.raises(KeyProblem, match=r"bad\.key"):
        load_signer(str(bad))
    with pytest.raises(KeyProblem):
        load_signer(str(tmp_path / "missing.key"))
    with pytest.raises(KeyProblem):
        load_signer("python:nonexistent_module_xyz:make")


def test_unsigned_verdicts_say_so_in_their_provenance() -> None:
    sealed = seal(_doc(), None)
    assert sealed.attestation is None
    doc = json.loads(sealed.verdict)
    assert doc["attestation"]["signed"] is False and "PROOFCHECK_SIGNING_KEY" in doc["attestation"]["warning"]


def test_garbage_attestations_are_problems_not_tracebacks(signer: Ed25519Signer) -> None:
    sealed = seal(_doc(), signer)
    keyring = Keyring.of([signer.private_key.public_key()])
    for garbage in (b"", b"{", b"[]", b'{"payloadType": 1}', b'{"payloadType":"x","payload":"!!","signatures":[{}]}',
                    b'{"payloadType":"x","payload":"","signatures":[]}', b"\xff" * 100):
        assert _codes(verify(sealed.verdict, garbage, keyring)) == ["attestation-unreadable"], garbage


def test_chain_detects_a_removed_middle_verdict_and_a_restart() -> None:
    first, second, third = ("a" * 64, "b" * 64, "c" * 64)
    entries = [ChainEntry("k1", first, None), ChainEntry("k2", second, first), ChainEntry("k3", third, second)]
    assert check_chain("pkg", entries) == []
    assert [p.code for p in check_chain("pkg", [entries[0], entries[2]])] == ["verdict-missing"]
    assert [p.code for p in check_chain("pkg", [*entries, ChainEntry("k4", "d" * 64, None)])] == ["chain-restarted"]


def test_ledger_detects_removed_replaced_unrecorded_and_edited() -> None:
    running = GENESIS
    rows = []
    stored = {}
    for seq, key in enumerate(["r/a.json", "r/b.json", "r/c.json"], start=1):
        digest = sha256_hex(key.encode())
        running = running_digest(running, key, digest)
        rows.append(LedgerRow(seq, key, digest, running))
        stored[key] = digest
    assert check_ledger(rows, stored) == []
    last_removed = {k: v for k, v in stored.items() if k != "r/c.json"}
    assert [p.code for p in check_ledger(rows, last_removed)] == ["verdict-removed"]
    assert [p.code for p in check_ledger(rows, {**stored, "r/b.json": "0" * 64})] == ["verdict-replaced"]
    assert [p.code for p in check_ledger(rows, {**stored, "r/x.json": "1" * 64})] == ["verdict-unrecorded"]
    assert next(p.code for p in check_ledger([rows[0], rows[2]], last_removed)) == "ledger-altered"


def _write(tmp_path: Path, sealed: Any, name: str = "v") -> Path:
    verdict = tmp_path / f"{name}.json"
    verdict.write_bytes(sealed.verdict)
    (tmp_path / f"{name}.intoto.jsonl").write_bytes(sealed.attestation)
    return verdict


def test_cli_verify_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = init_key(tmp_path / "keys", "op")
    signer = load_signer(str(keys.private))
    package = tmp_path / "pkg.zip"
    package.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    doc = _doc("pkg.zip")
    doc["package"]["sha256"] = sha256_hex(package.read_bytes())
    verdict = _write(tmp_path, seal(doc, signer))
    assert main(["verify", str(verdict), "--key", str(keys.public), "--package", str(package)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "ruleset:" in out and "engine:" in out
    other = tmp_path / "other.zip"
    other.write_bytes(b"something else")
    assert main(["verify", str(verdict), "--key", str(keys.public), "--package", str(other)]) == 1
    assert "package-mismatch" in capsys.readouterr().out
    verdict.write_bytes(verdict.read_bytes().replace(b'"fail"', b'"pass"', 1))
    assert main(["verify", str(verdict), "--key", str(tmp_path / "keys")]) == 1
    assert "verdict-altered" in capsys.readouterr().out
    assert main(["verify", str(verdict)]) == 2  # no trusted key anywhere
    assert "trusted public key" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "nope.json"), "--key", str(keys.public)]) == 2
    (tmp_path / "v.intoto.jsonl").write_bytes(b"\x00garbage")
    assert main(["verify", str(verdict), "--key", str(keys.public)]) == 1
    assert "attestation-unreadable" in capsys.readouterr().out


def test_cli_keys_init_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "init", "--dir", str(tmp_path), "--name", "demo"]) == 0
    out = capsys.readouterr().out
    keyid = out.split("key created: ", 1)[1].split()[0]
    assert keyid.startswith("sha256:") and "PROOFCHECK_SIGNING_KEY" in out
    assert main(["keys", "init", "--dir", str(tmp_path), "--name", "demo"]) == 2
    assert main(["keys", "show", "--key", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip().endswith(keyid)


def test_sealing_does_not_change_the_verdict_it_attests(signer: Ed25519Signer) -> None:
    doc = _doc()
    before = copy.deepcopy(doc)
    sealed = seal(doc, signer, previous_sha256="e" * 64, previous_key="reports/x/v-1/r.json")
    stored = json.loads(sealed.verdict)
    assert stored["chain"] == {"previous_sha256": "e" * 64, "previous_key": "reports/x/v-1/r.json"}
    for key in before:
        assert stored[key] == before[key]
