"""The package manifest: safe loading, schema validation, findings that say where and never crash."""

from __future__ import annotations

import json

import pytest

from validators.manifest import MAX_MANIFEST_BYTES, is_manifest, load_manifest, parse_manifest

GOOD_YAML = """\
referential: REM-MDV-LGC-SF-Va1
publisher: Éditeur Démo SAS
software: CabinetDémo
version: 4.2
profiles: [Général, Médecin traitant]
complete: true
proofs:
  INS.41.2.2: [captures/appel_traits.png]
  DOC 3.1.2:
    files: [DOC.3.1.2/]
    comment: deux captures
comments: données fictives
"""


def test_a_good_yaml_manifest() -> None:
    manifest = parse_manifest("manifest.yaml", GOOD_YAML.encode())
    assert manifest.publisher == "Éditeur Démo SAS"
    assert manifest.version == "4.2"
    assert manifest.profiles == ("Général", "Médecin traitant")
    assert manifest.complete is True
    assert [(p.key, p.files, p.comment) for p in manifest.proofs] == [
        ("INS.41.2.2", ("captures/appel_traits.png",), None),
        ("DOC 3.1.2", ("DOC.3.1.2/",), "deux captures"),
    ]


def test_a_good_json_manifest_and_an_empty_one() -> None:
    raw = json.dumps({"profiles": ["Général"], "proofs": {"ANN.1.1.1": ["a.pdf"]}}).encode()
    manifest = parse_manifest("manifest.json", raw)
    assert manifest.proofs[0].files == ("a.pdf",)
    assert manifest.referential is None and manifest.complete is False
    assert parse_manifest("manifest.yaml", b"").proofs == ()


@pytest.mark.parametrize(
    ("name", "raw", "where", "problem"),
    [
        ("manifest.yaml", b"a: &x [1]\nb: *x\n", "line 2", "aliases"),
        ("manifest.yaml", b"proofs: {", "line 1", "not valid YAML"),
        ("manifest.yaml", b"profile: [x]\n", "/", "unknown field"),
        ("manifest.yaml", b"complete: perhaps\n", "/complete", "expected boolean"),
        ("manifest.yaml", b"proofs:\n  A: [x]\n  A: [y]\n", "line 3", "repeated"),
        ("manifest.yaml", b"proofs: {A: [../../etc/passwd]}\n", "/proofs/A/0", "inside the package"),
        ("manifest.yaml", b"proofs: {A: [/etc/passwd]}\n", "/proofs/A/0", "inside the package"),
        ("manifest.yaml", b"proofs: {A: 3}\n", "/proofs/A", "list of files"),
        ("manifest.yaml", b"- just\n- a list\n", "/", "expected object"),
        ("manifest.yaml", b"[" * 5000, "line 1", "nested too deeply"),
        ("manifest.yaml", b"\xff\xfe bad", "byte 0", "not UTF-8"),
        ("manifest.json", b'{"proofs": ', "line 1", "not valid JSON"),
        ("manifest.json", b"[" * 100_000, "file", "nested too deeply"),
        ("manifest.yaml", b"comments: " + b"x" * MAX_MANIFEST_BYTES, "file", "over"),
    ],
)
def test_invalid_manifests_give_one_finding_with_where(
    name: str, raw: bytes, where: str, problem: str
) -> None:
    manifest, findings = load_manifest(name, lambda _: raw)
    assert manifest is None
    [finding] = findings
    assert finding.rule == "package.manifest-invalid" and finding.severity.value == "error"
    assert f"at {where}:" in finding.message and problem in finding.message
    assert finding.location.entry == name


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 30)]
    manifest, [finding] = load_manifest("manifest.yaml", lambda _: "\n".join(lines).encode())
    assert manifest is None and "aliases" in finding.message


def test_findings_never_quote_the_manifest_values() -> None:
    secret = "1850578006084 36"
    _, [finding] = load_manifest("manifest.yaml", lambda _: f"complete: '{secret}'\n".encode())
    assert secret not in finding.message


def test_an_unreadable_manifest_is_a_finding() -> None:
    def fail(_: str) -> bytes:
        raise PermissionError("denied")

    manifest, [finding] = load_manifest("manifest.yaml", fail)
    assert manifest is None and "cannot be read" in finding.message and finding.evidence == "PermissionError"


@pytest.mark.parametrize(
    ("path", "expected"),
    [("manifest.yaml", True), ("MANIFEST.JSON", True), ("pkg/manifest.yml", True),
     ("a/b/manifest.yaml", False), ("manifest.txt", False)],
)
def test_is_manifest(path: str, expected: bool) -> None:
    assert is_manifest(path) is expected
