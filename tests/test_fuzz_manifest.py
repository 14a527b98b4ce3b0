"""Fuzzing of the manifest loader: random documents as YAML and JSON, YAML-shaped noise, random bytes.

Properties: ``load_manifest`` never raises; it returns either a manifest whose fields have the types the
mapping code relies on, or one catalogued finding that never repeats a value written in the manifest.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st
from test_fuzz_support import assert_catalogued, fuzz_settings

from validators.manifest import Manifest, load_manifest

CANARY = "CANARI-7f3a"  # written into values; a finding must never quote it back
NAMES = ("manifest.yaml", "manifest.json")


def load(name: str, raw: bytes) -> Manifest | None:
    manifest, findings = load_manifest(name, lambda _path: raw)
    assert_catalogued(findings)
    if manifest is None:
        assert [f.rule for f in findings] in (["package.manifest-invalid"], ["system.check-not-run"])
        assert all(CANARY not in f.message for f in findings)
        return None
    assert findings == []
    assert all(isinstance(p, str) for p in manifest.profiles or ())
    for proof in manifest.proofs:
        assert isinstance(proof.key, str) and all(isinstance(f, str) for f in proof.files)
    assert all(isinstance(c, str) for c in manifest.comments)
    return manifest


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.just(CANARY), st.sampled_from(["INS.41.2.2", "../etc/passwd", "C:\\x", "DOC 3.1.2/", "Général"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)
_FIELDS = ["manifest_version", "referential", "publisher", "software", "version", "profiles", "complete",
           "proofs", "comments", "x-note", "inconnu"]
_documents = st.one_of(
    st.dictionaries(st.sampled_from(_FIELDS), _values, max_size=8),
    st.fixed_dictionaries(
        {"proofs": st.dictionaries(st.text(min_size=1, max_size=20), st.one_of(
            st.lists(st.text(max_size=30), max_size=3),
            st.fixed_dictionaries({"files": st.lists(st.text(max_size=30), max_size=3)},
                                  optional={"comment": _values}),
            _values,
        ), max_size=4)},
        optional={"profiles": st.lists(st.text(max_size=20), max_size=4), "publisher": _values},
    ),
    _values,
)


@fuzz_settings(deadline_ms=2000)
@given(_documents, st.sampled_from(NAMES))
def test_random_documents(document: Any, name: str) -> None:
    if name.endswith(".json"):
        raw = json.dumps(document, allow_nan=True).encode()
    else:
        raw = yaml.safe_dump(document, allow_unicode=True).encode()
    load(name, raw)


_YAML_TOKENS = st.sampled_from([
    "proofs", "profiles", "files", "comment", "version", "complete", "x-a", "INS.41.2.2", ": ", ":", "- ", "-",
    "? ", "\n", "\n  ", "\n    ", "[", "]", "{", "}", ",", "'", '"', "!!binary ", "!!str ", "!!python/object ",
    "!!timestamp ", "!!set ", "!!omap ", "&a ", "*a", "<<: ", "|", ">", "#", "%YAML 1.1\n", "---\n", "...\n",
    "2024-13-45", "1e999", ".nan", "0x1F", "0o17", "1_000", "~", "yes", "true", "1" * 5000, "é", "\t", "\x00",
])


@fuzz_settings(deadline_ms=2000, share=2.0)
@given(st.lists(_YAML_TOKENS, max_size=40).map("".join))
def test_yaml_shaped_noise(text: str) -> None:
    load("manifest.yaml", text.encode("utf-8"))


@fuzz_settings(deadline_ms=2000)
@given(st.binary(max_size=512), st.sampled_from(NAMES))
def test_random_bytes(raw: bytes, name: str) -> None:
    load(name, raw)


@fuzz_settings(deadline_ms=2000)
@given(st.lists(st.sampled_from(['{', '}', '[', ']', ',', ':', '"a"', '"proofs"', "1" * 5000, "1e999", "-0",
                                 "null", "true", "NaN", "Infinity", '"\\ud800"', " "]), max_size=30).map("".join))
@example('{"version": ' + "1" * 5000 + "}")
def test_json_shaped_noise(text: str) -> None:
    load("manifest.json", text.encode("utf-8"))


# --- crashes the fuzzing found (each was a TypeError/ValueError out of load_manifest) ---------------------

FOUND = {
    "yaml-out-of-range-date": ("manifest.yaml", b"complete: 2024-13-45\n"),
    "yaml-5000-digit-integer": ("manifest.yaml", b"version: " + b"1" * 5000 + b"\n"),
    "json-5000-digit-integer": ("manifest.json", b'{"version": ' + b"1" * 5000 + b"}"),
    "yaml-list-as-key": ("manifest.yaml", b"? [a, b]\n: x\n"),
    "yaml-mapping-as-key-deeper": ("manifest.yaml", b"x-note: {? {a: 1}: 2}\n"),
    "yaml-number-as-top-level-key": ("manifest.yaml", b"1: x\n"),
    "yaml-empty-timestamp-tag": ("manifest.yaml", b"!!timestamp \n"),
    "yaml-bool-tag-on-a-word": ("manifest.yaml", b"complete: !!bool peut-etre\n"),
}


@pytest.mark.parametrize("case", sorted(FOUND))
def test_found_crashes_are_manifest_findings(case: str) -> None:
    name, raw = FOUND[case]
    manifest, findings = load_manifest(name, lambda _path: raw)
    assert manifest is None and [f.rule for f in findings] == ["package.manifest-invalid"]


def test_a_number_written_as_a_proof_key_is_read_as_text() -> None:
    manifest = load("manifest.yaml", b"proofs:\n  41.20: [a.png]\n")
    assert manifest is not None and [p.key for p in manifest.proofs] == ["41.2"]
