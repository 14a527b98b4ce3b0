"""``docker/bucket-policy.json`` under the small AWS-semantics evaluator of ``conftest_policy``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest_policy import BUCKET, INSTRUCTORS, TAG_KEY, Unsupported, evaluate, load_policy


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    return load_policy()


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
