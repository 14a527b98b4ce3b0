"""French messages are French throughout: what a validator puts inside a French template is French too.

A parameter that takes a few fixed English words gets French words in the catalogue (``fr: values``);
these tests find the fixed words in the validators' source (literal parameters, and the phrases a few
modules build their parameters from) and check that each has its French words or holds no English. The
hostile corpus, run through the dry run, must then give French messages with no English sentence in them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.hostile import hostile_cases
from validators import filetype, package, rules
from validators.dryrun import dry_run
from validators.mail import mime
from validators.model import Location
from validators.ssi.formulas import formula_kind

ROOT = Path(__file__).resolve().parents[1]
VALIDATORS = ROOT / "validators"
# Words of English sentences that French never uses (so a hit is English, never a false alarm).
_ENGLISH_WORDS = """
    the of with and is are was were not could cannot can be been by from to at this that these those for over
    when only no has have had its it than more less after before into inside in within without which while
    bytes named name names found read unsupported encrypted member members entry entries character characters
    separators reserved device trailing dot dots space spaces forbids alike end truncated method corrupt
    checksum sizes size path absolute drive letter directory link links symbolic hard special loaded missing
    too many empty none unknown header headers limit invalid decoded decode decoding stream streams object
    objects parsed parse parser body outside lists listed differs own unexplained appended compressed
    decompressed chunk chunks trailer runs run opened hidden starts followed function operator call cell cells
    needed password handler tree deep deeply levels level nested recursed endless error errors failed failure
    out available unavailable installed configured does answer started scanned refused silently stall would
    pass schema element elements attribute attributes expected got line column should must may might yes bad
    broken damaged valid declared declares declare
"""
ENGLISH = frozenset(_ENGLISH_WORDS.split())
_WORD = re.compile(r"[^\W\d_]+")  # letters, accented ones included ("forçage" is no "for")
_QUOTED = re.compile(r"`[^`]*`|«[^»]*»")  # what a message quotes (a command, a header) is the same in any language


def english_words(text: str) -> set[str]:
    """English words of ``text`` when it reads as a phrase (identifiers and names, without a space, never do)."""
    text = _QUOTED.sub("", text)
    if " " not in text.strip():
        return set()
    return {word.lower() for word in _WORD.findall(text)} & ENGLISH


def _french_words(rule_id: str, param: str) -> dict[str, str]:
    return dict(dict(rules.get(rule_id).fr_values).get(param, ()))


def _shows_english(rule_id: str, param: str, value: str) -> bool:
    """Whether ``value`` of ``param`` would show English words in the rule's French message.

    A template ("{} (decompressed)", an f-string's literal parts) is French when some French word is given
    for a value it can make: the values it is filled with are enumerated in the catalogue."""
    words = _french_words(rule_id, param)
    if "{}" in value:
        pattern = re.compile(".+".join(re.escape(part) for part in value.split("{}")))
        return not any(pattern.fullmatch(key) for key in words) and bool(english_words(value.replace("{}", "")))
    return bool(english_words(rules.french_word(words, value)))


# --- the validators' literal parameters --------------------------------------------------------------


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(VALIDATORS.rglob("*.py")):
        if "pii" not in path.relative_to(VALIDATORS).parts:  # validators/pii/ has its own owner and tests
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def _text(node: ast.expr) -> str | None:
    """A literal's text; an f-string's literal parts (what it always says), "{}" for what it fills in."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def literal_parameters() -> Iterator[tuple[str, str, str, str]]:
    """(rule, parameter, literal text, where) of every finding built with a literal parameter."""
    catalogue = rules.catalogue()
    for path, module in _modules():
        for node in ast.walk(module):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
                continue
            rule_id = node.args[0].value
            if not isinstance(rule_id, str) or rule_id not in catalogue or not catalogue[rule_id].fr:
                continue
            for keyword in node.keywords:
                text = _text(keyword.value) if keyword.arg in catalogue[rule_id].placeholders else None
                if keyword.arg is not None and text is not None:
                    yield rule_id, keyword.arg, text, f"{path.relative_to(ROOT)}:{node.lineno}"


# English still shown inside French messages, owned elsewhere or not reworded yet. Shrink this list as
# each gets French words; never add to it.
KNOWN_ENGLISH: frozenset[tuple[str, str, str]] = frozenset()


def test_literal_parameters_have_french_words() -> None:
    leaks = {
        (rule_id, param, text): where
        for rule_id, param, text, where in literal_parameters()
        if _shows_english(rule_id, param, text)
    }
    new = {key: where for key, where in leaks.items() if key not in KNOWN_ENGLISH}
    assert new == {}, "English inside French messages: add French words (fr: values) or reword"
    fixed = KNOWN_ENGLISH - set(leaks)
    assert fixed == set(), f"{sorted(fixed)} have French words now: remove them from KNOWN_ENGLISH"


def test_the_source_scan_sees_literal_parameters() -> None:
    found = {(rule_id, param, text) for rule_id, param, text, _ in literal_parameters()}
    assert ("ssi.pdf.encrypted", "detail", "a password is needed to open it") in found
    assert ("ssi.archive.inconsistent", "what", "compression method") in found
    assert _shows_english("ssi.archive.inconsistent", "what", "the size of the member")


# --- phrases modules build their parameters from -------------------------------------------------------


def _literal_args(relative: str, callee: str, index: int = 0, *, required: bool = True) -> list[str]:
    """Literal texts passed (position ``index``) to ``callee(...)`` in one module."""
    module = ast.parse((VALIDATORS / relative).read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(module):
        if isinstance(node, ast.Call) and len(node.args) > index:
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            text = _text(node.args[index])
            if name == callee and text is not None:
                out.append(text)
    assert out or not required, f"no {callee}(...) in {relative}"
    return out


ARCHIVE_MODULES = ("ziptriage.py", "archives/bounded.py", "archives/forward.py", "archives/rar.py",
                   "archives/sevenzip.py", "archives/tar.py")


@pytest.mark.parametrize(
    ("rule_id", "param", "values"),
    [
        ("ssi.archive.malformed", "reason", [text for module in ARCHIVE_MODULES if module != "ziptriage.py"
                                              for text in _literal_args(module, "MalformedError")]),
        ("ssi.archive.malformed", "reason", _literal_args("ziptriage.py", "_malformed", 2)),
        ("ssi.cda.payload-not-inspected", "reason", _literal_args("cda/embedded.py", "_NotInspected")),
        ("cda.embedded", "reason", _literal_args("cda/embedded.py", "_NotInspected")),
        ("format.email.malformed", "defect", list(mime.STRUCTURAL_DEFECTS.values())),
        ("ssi.email.not-inspected", "what", [what for what, _ in mime.UNREAD_MESSAGE_TYPES.values()]),
        ("package.name-encoding", "encoding", list(package.ODD_ENCODINGS.values())),
        ("format.truncated", "reason", _literal_args("filetype.py", "Cut")),
        ("format.truncated", "label", [fmt.label for fmt in filetype.ACCEPTED]),
        ("format.not-accepted", "label", [label for _, label in filetype._REFUSED_LABELS]),
        ("format.extension-mismatch", "expected", [fmt.label for fmt in filetype.ACCEPTED]),
        ("ssi.image.unparsed", "reason", _literal_args("imagefacts.py", "Malformed")),
        ("ssi.polyglot", "inner", _literal_args("ssi/signatures.py", "Hidden")),
        ("ssi.executable", "kind", [kind.removesuffix(" executable")
                                    for kind in _literal_args("ssi/signatures.py", "Hidden")]),
    ],
)
def test_phrases_parameters_are_built_from_have_french_words(rule_id: str, param: str, values: list[str]) -> None:
    english = sorted(value for value in values if _shows_english(rule_id, param, value))
    assert english == [], f"{rule_id} {param}: no French words for {english}"


def _mail_literals(method: str, index: int) -> list[str]:
    return [text for path in sorted((VALIDATORS / "mail").glob("*.py"))
            for text in _literal_args(str(path.relative_to(VALIDATORS)), method, index, required=False)]


# A family that could not be imported: the import error, in English, is for the operator who deployed it.
OPERATOR_DETAILS = frozenset({"check unavailable: {}"})


def _not_run_details() -> list[str]:
    """Details of results whose state is NOT_RUN and that carry no finding of their own: the engine makes
    them system.check-not-run's reason."""
    out = []
    for path, module in _modules():
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(module):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "CheckResult":
                keywords = {k.arg: k.value for k in node.keywords if k.arg}
                state = keywords.get("state")
                text = _text(keywords["detail"]) if "detail" in keywords else None
                not_run = state is not None and "NOT_RUN" in (ast.get_source_segment(source, state) or "")
                if not_run and text and "findings" not in keywords and not node.args and text not in OPERATOR_DETAILS:
                    out.append(text)
    return out


@pytest.mark.parametrize(
    ("rule_id", "param", "values"),
    [
        ("format.email.malformed", "defect", _mail_literals("malformed", 0)),
        ("ssi.email.not-inspected", "what", _mail_literals("not_inspected", 0)),
        ("ssi.email.not-inspected", "reason", _mail_literals("not_inspected", 1)),
        ("system.check-not-run", "reason", _not_run_details()),
    ],
)
def test_words_helpers_pass_on_have_french_words(rule_id: str, param: str, values: list[str]) -> None:
    assert values
    english = sorted(value for value in values if _shows_english(rule_id, param, value))
    assert english == [], f"{rule_id} {param}: no French words for {english}"


def test_member_errors_have_french_words() -> None:
    module = ast.parse((VALIDATORS / "ziptriage.py").read_text(encoding="utf-8"))
    pairs = [
        (node.args[0].value, node.args[1].value)
        for node in ast.walk(module)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "MemberError" and len(node.args) == 2
        and all(isinstance(arg, ast.Constant) for arg in node.args)
    ]
    assert len(pairs) >= 5
    assert sorted(pair for pair in pairs if rules.get(pair[0]).placeholders
                  and _shows_english(pair[0], "reason", pair[1])) == []


def test_every_formula_kind_has_french_words() -> None:
    cells = ["=1+1", "@SUM(A1)", "+=A1", "-@x", "+cmd|' /C calc'!A0", "-SUM(A1:A2)", "+A1*2", "-B12"]
    kinds = {formula_kind(cell) for cell in cells}
    assert None not in kinds and len(kinds) == len(cells)
    assert sorted(k for k in kinds if k and _shows_english("ssi.text.formula-injection", "kind", k)) == []


def test_a_list_of_fixed_words_shows_each_french_word() -> None:
    words = {"control characters": "des caractères de contrôle", "backslash separators": "des barres obliques"}
    assert rules.french_word(words, "control characters, backslash separators") == (
        "des caractères de contrôle, des barres obliques"
    )
    assert rules.french_word({"video": "une vidéo", "screenshot": "une capture"}, "video or screenshot") == (
        "une vidéo ou une capture"
    )
    # One word without French keeps the whole value as written (never half translated).
    assert rules.french_word(words, "control characters, odd bytes") == "control characters, odd bytes"


# --- what a report shows --------------------------------------------------------------------------


def test_a_name_with_a_bidi_override_cannot_reverse_the_report() -> None:
    name = "facture\u202efdp.exe"
    finding = rules.finding("ssi.embedded-risk", Location(entry=name), count=1, rule="ssi.executable", entry=name)
    for text in (finding.message, finding.message_fr or "", finding.location.entry or ""):
        assert "\u202e" not in text and "facture\\u202efdp.exe" in text
    assert dict(finding.params)["entry"] == "facture\\u202efdp.exe"
    assert rules.shown_text("ligne 1\tcolonne\x1b[31m") == "ligne 1\tcolonne\\u001b[31m"


@pytest.mark.slow
def test_the_hostile_corpus_reads_in_french(tmp_path: Path, clamd_settings: dict[str, str]) -> None:
    for case in hostile_cases():
        (tmp_path / case.name).write_bytes(case.data)
    verdict = dry_run(tmp_path, settings=clamd_settings)
    english = sorted(
        {
            (finding.rule, name, value)
            for finding in verdict.iter_findings()
            for name, value in finding.params
            if finding.message_fr is not None and isinstance(value, str)
            and not finding.rule.startswith("pii.")  # validators/pii/ has its own owner
            and _shows_english(finding.rule, name, value) and (finding.rule, name, value) not in KNOWN_ENGLISH
        }
    )
    assert english == []
