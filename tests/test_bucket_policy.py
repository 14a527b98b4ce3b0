"""``docker/bucket-policy.json`` under a small evaluator of the AWS policy language (the part it uses).

What the evaluator knows, from the IAM reference ("Policy evaluation logic", "Condition operators"): an
explicit Deny wins over any Allow, no Allow is an implicit deny; ``*``/``?`` wildcards in actions and
resources; the condition operators of the file (``StringEquals``, ``StringNotEquals``, ``StringLike``,
``StringNotLike``, ``Null``), several values of one key OR-ed, several keys and operators AND-ed; a
key missing from the request makes a positive operator false and a negated one (``StringNotEquals``)
**true**. Anything else it meets (another operator, another condition key, a policy variable it would
have to resolve) raises instead of guessing: the test then fails rather than passing on a wrong model.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

POLICY = Path(__file__).resolve().parents[1] / "docker" / "bucket-policy.json"
INSTRUCTORS = "arn:aws:iam::ACCOUNT_ID:role/proofcheck-instructors"
BUCKET = "arn:aws:s3:::proofcheck/"
TAG_KEY = "s3:ExistingObjectTag/"


# operator -> (negated, wildcards allowed)
_STRING_OPERATORS = {
    "StringEquals": (False, False),
    "StringLike": (False, True),
    "StringNotEquals": (True, False),
    "StringNotLike": (True, True),
}


class Unsupported(Exception):
    """The policy uses something this evaluator does not model."""


def _values(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _like(pattern: str, text: str) -> bool:
    if "${" in pattern:
        raise Unsupported(f"policy variable in {pattern!r}")
    return fnmatch.fnmatchcase(text, pattern.replace("[", "[[]"))


def _principal_matches(principal: Any, who: str) -> bool:
    if principal == "*":
        return True
    for arn in _values(principal.get("AWS", [])):
        if "${" in arn:
            # Resolving the variable is out of scope; a different literal prefix cannot match anyway.
            prefix = arn.split("${", 1)[0]
            if who.startswith(prefix):
                raise Unsupported(f"principal {arn!r} needs its variable resolved")
            continue
        if arn == who:
            return True
    return False


def _condition_holds(condition: Mapping[str, Any], tags: Mapping[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            if not key.startswith(TAG_KEY):
                raise Unsupported(f"condition key {key}")
            actual = tags.get(key[len(TAG_KEY) :])
            values = _values(expected)
            if operator == "Null":
                holds = (actual is None) == (values == ["true"])
            elif operator in _STRING_OPERATORS:
                negated, wildcards = _STRING_OPERATORS[operator]
                matched = actual is not None and any(
                    _like(v, actual) if wildcards else actual == v for v in values
                )
                holds = (actual is None or not matched) if negated else matched
            else:
                raise Unsupported(f"condition operator {operator}")
            if not holds:
                return False
    return True


def evaluate(policy: Mapping[str, Any], who: str, action: str, key: str, tags: Mapping[str, str]) -> str:
    """``allow``, ``deny`` (an explicit Deny matched) or ``implicit-deny`` for one request."""
    resource = BUCKET + key
    allowed = False
    for statement in policy["Statement"]:
        if not _principal_matches(statement["Principal"], who):
            continue
        if not any(_like(a, action) for a in _values(statement["Action"])):
            continue
        if not any(_like(r, resource) for r in _values(statement["Resource"])):
            continue
        if not _condition_holds(statement.get("Condition", {}), tags):
            continue
        if statement["Effect"] == "Deny":
            return "deny"
        allowed = True
    return "allow" if allowed else "implicit-deny"


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(POLICY.read_text(encoding="utf-8"))
    return loaded


def test_the_policy_denies_packages_not_checked_in_full_by_their_tag(policy: dict[str, Any]) -> None:
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny" and "proofcheck-checked" in json.dumps(s)]
    assert len(deny) == 1
    assert deny[0]["Condition"] == {"StringNotEquals": {"s3:ExistingObjectTag/proofcheck-checked": "full"}}
    assert set(deny[0]["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
    assert deny[0]["Resource"] == BUCKET + "inbox/*"


FULL = {"proofcheck-status": "pass", "proofcheck-checked": "full", "proofcheck-ruleset": "rs"}


@pytest.mark.parametrize(
    ("key", "tags", "expected"),
    [
        ("inbox/acme/p.zip", {}, "deny"),  # no verdict yet
        ("inbox/acme/p.zip", FULL, "allow"),
        ("inbox/acme/p.zip", {**FULL, "proofcheck-status": "warning"}, "allow"),
        ("inbox/acme/p.zip", {**FULL, "proofcheck-status": "fail"}, "allow"),
        # A check did not run: hidden, whatever the status (a NIR found while clamd was down is "fail").
        ("inbox/acme/p.zip", {**FULL, "proofcheck-status": "error", "proofcheck-checked": "incomplete"}, "deny"),
        ("inbox/acme/p.zip", {**FULL, "proofcheck-status": "fail", "proofcheck-checked": "incomplete"}, "deny"),
        # Tagged before the checked tag existed: hidden until the reconcile tags it from its verdict.
        ("inbox/acme/p.zip", {"proofcheck-status": "pass", "proofcheck-ruleset": "rs"}, "deny"),
        ("inbox/acme/p.zip", {**FULL, "proofcheck-checked": "FULL"}, "deny"),  # values are exact
        ("inbox/acme/p.zip", {**FULL, "proofcheck-quarantine": "true"}, "deny"),  # quarantine wins
        ("inbox/acme/p/INS.41.2.2/capture.png", {**FULL, "proofcheck-checked": "incomplete"}, "deny"),
        ("reports/inbox/acme/p.zip/v-1/rs.html", {}, "allow"),  # the report (masked evidence) stays readable
        ("reports/index.html", {}, "allow"),
        ("quarantine/inbox/acme/p.zip", FULL, "deny"),
        ("dryrun/acme/p.zip", FULL, "deny"),
    ],
)
def test_what_instructors_may_read(policy: dict[str, Any], key: str, tags: dict[str, str], expected: str) -> None:
    assert evaluate(policy, INSTRUCTORS, "s3:GetObject", key, tags) == expected


def test_instructors_never_read_an_older_version(policy: dict[str, Any]) -> None:
    assert evaluate(policy, INSTRUCTORS, "s3:GetObjectVersion", "inbox/acme/p.zip", FULL) == "implicit-deny"
    incomplete = {**FULL, "proofcheck-checked": "incomplete"}
    assert evaluate(policy, INSTRUCTORS, "s3:GetObjectVersion", "inbox/acme/p.zip", incomplete) == "deny"


def test_the_evaluator_follows_the_missing_key_rule_and_refuses_what_it_does_not_model() -> None:
    def statement(condition: dict[str, Any]) -> dict[str, Any]:
        return {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                               "Resource": BUCKET + "*", "Condition": condition}]}

    missing: dict[str, str] = {}
    key = TAG_KEY + "t"
    assert evaluate(statement({"StringEquals": {key: "x"}}), INSTRUCTORS, "s3:GetObject", "k", missing) != "allow"
    assert evaluate(statement({"StringNotEquals": {key: "x"}}), INSTRUCTORS, "s3:GetObject", "k", missing) == "allow"
    assert evaluate(statement({"Null": {key: "true"}}), INSTRUCTORS, "s3:GetObject", "k", missing) == "allow"
    with pytest.raises(Unsupported):
        evaluate(statement({"StringEqualsIfExists": {key: "x"}}), INSTRUCTORS, "s3:GetObject", "k", missing)
    with pytest.raises(Unsupported):
        evaluate(statement({"StringEquals": {"aws:SourceIp": "x"}}), INSTRUCTORS, "s3:GetObject", "k", missing)
