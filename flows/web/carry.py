"""Which human decision applies to each finding and proof of a verdict, and which ask to be reviewed again.

Pure: a verdict's view (``flows/web/verdicts.py``) and the package's decision trail in, states out.

- ``decided``: the latest decision on this finding (same fingerprint) or proof (same content) was made
  on this very verdict;
- ``carried``: it was made on an earlier verdict of the package and the finding (fingerprint) or the
  proof (content digest) is unchanged: it still applies;
- ``review`` (*à revoir*): a decision was made on this proof, or on a finding of the same rule in the
  same proof and file, but what it was about changed since (new file content, location or evidence;
  a proof whose files or findings changed): it is shown beside the finding, and does not apply;
- ``none``: no decision yet.

Findings of severity ``info`` ask for no decision and get no state. Decisions whose finding or proof is
gone from the verdict (cleared by a new version or ruleset) are listed as
``gone``, so nothing an instructor wrote disappears from view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flows.decisions import FINDING, PROOF, Decision, latest_by_subject
from flows.web.verdicts import VerdictView

NONE, DECIDED, CARRIED, REVIEW = "none", "decided", "carried", "review"


@dataclass(frozen=True)
class State:
    state: str
    decision: Decision | None = None  # the decision that applies, or the one to review

    @property
    def applies(self) -> bool:
        return self.state in (DECIDED, CARRIED)


@dataclass(frozen=True)
class States:
    findings: dict[str, State]  # by fingerprint
    proofs: dict[str, State]  # by proof id
    gone: tuple[Decision, ...]  # latest decisions on findings no longer in the verdict

    def count(self, state: str) -> int:
        return self.count_findings(state) + self.count_proofs(state)

    def count_findings(self, state: str) -> int:
        return sum(1 for s in self.findings.values() if s.state == state)

    def count_proofs(self, state: str) -> int:
        return sum(1 for s in self.proofs.values() if s.state == state)


def states(verdict: VerdictView, history: Sequence[Decision]) -> States:
    latest = latest_by_subject(history)
    findings: dict[str, State] = {}
    present = {f.fingerprint for f in verdict.findings()}
    # Decisions whose finding changed: matched to a current finding of the same proof, rule and file,
    # else of the same proof and rule (the file was renamed and changed).
    changed = [d for (kind, subject), d in latest.items() if kind == FINDING and subject not in present]
    by_place = {(d.proof_id, d.rule, d.path): d for d in changed}
    by_rule = {(d.proof_id, d.rule): d for d in changed}
    used: set[int] = set()
    for finding in verdict.findings():
        if finding.severity == "info":
            continue  # information only: no decision is asked for (one may still be recorded and carried)
        decision = latest.get((FINDING, finding.fingerprint))
        earlier = by_place.get(finding.similar) or by_rule.get((finding.proof_id, finding.rule))
        if earlier is not None:
            used.add(earlier.seq)  # reviewed (decided again) or to review: not gone either way
        if decision is not None:
            findings[finding.fingerprint] = State(DECIDED if decision.json_key == verdict.json_key else CARRIED,
                                                  decision)
        else:
            findings[finding.fingerprint] = State(REVIEW if earlier is not None else NONE, earlier)
    proofs: dict[str, State] = {}
    for proof in verdict.proofs:
        decision = latest.get((PROOF, proof.id))
        if decision is None:
            proofs[proof.id] = State(NONE)
        elif decision.digest != proof.digest:
            proofs[proof.id] = State(REVIEW, decision)
        else:
            proofs[proof.id] = State(DECIDED if decision.json_key == verdict.json_key else CARRIED, decision)
    ids = {p.id for p in verdict.proofs}
    gone = tuple(d for d in changed if d.seq not in used) + tuple(
        d for (kind, subject), d in latest.items() if kind == PROOF and subject not in ids
    )
    return States(findings, proofs, gone)


__all__ = ["CARRIED", "DECIDED", "NONE", "REVIEW", "State", "States", "states"]
