"""A small evaluator of the AWS policy language, the part ``docker/bucket-policy.json`` uses.

What it knows, from the IAM reference ("Policy evaluation logic", "Condition operators"): an explicit
Deny wins over any Allow, no Allow is an implicit deny; ``*``/``?`` wildcards in actions and resources;
the condition operators of the file (``StringEquals``, ``StringNotEquals``, ``StringLike``,
``StringNotLike``, ``Null``), several values of one key OR-ed, several keys and operators AND-ed; a key
missing from the request makes a positive operator false and a negated one (``StringNotEquals``)
**true**. Anything else it meets (another operator, another condition key, a policy variable it would
have to resolve) raises instead of guessing: a test then fails rather than passing on a wrong model.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


def load_policy() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(POLICY.read_text(encoding="utf-8"))
    return loaded


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
