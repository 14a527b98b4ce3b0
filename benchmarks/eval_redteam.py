"""The red team's measure: an independent adversarial corpus for the SSI checks (issue 12) and the NIR
checks (issue 13), run through the engine of any checkout, scored per class.

    .venv/bin/python benchmarks/eval_redteam.py                       # random seed (printed), this checkout
    .venv/bin/python benchmarks/eval_redteam.py --seed 7 --checkout /work/main --json /tmp/main.json
    .venv/bin/python benchmarks/eval_redteam.py --only ssi --class email --keep /tmp/corpus

The corpus (``fixtures/redteam``) is generated here, with this checkout's code; each case is one package
that a worker process, started with the *target* checkout's interpreter, checks the way
``proofcheck dry-run --format json`` does (engine API, one private clamd for the run; a few cases are also
run through the target's CLI to make sure both agree). A case that hangs past ``--case-timeout`` is
recorded as a hang and the worker restarted after it.

Scoring (issue 12): a hostile case is caught when the package status is fail or error with an
error-severity ssi./format./system. finding anywhere in its verdict; a benign twin raises a false alarm
when it gets any such error. Findings of the CDA conformity family and the "no CDA ruleset synced"
system findings are environment, not counted. Issue 13: a case is detected at error / at >= warning by
pii.* findings (coverage notices pii.not-inspected / pii.not-readable excluded); precision and recall
are computed per carrier and per context; the rendered JSON and HTML reports are searched for the NIR
bodies (13 digits) and any 6 consecutive digits of them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CAUGHT_FAMILIES = ("ssi.", "format.", "system.")
ENVIRONMENT_RULES = ("system.ruleset-missing", "system.ruleset-gap")  # no CDA ruleset synced for the run
IGNORED_FAMILIES = ("cda.",)  # CDA conformity is out of this corpus' scope
PII_COVERAGE_RULES = ("pii.not-inspected", "pii.not-readable")
POLICY_RULES = ("format.not-accepted",)  # a refused file type: a false alarm of policy, not of detection
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


# --- worker: runs inside the target checkout's interpreter; imports only its public engine API -----


def worker(plan_path: Path, out_dir: Path, clamd_dir: Path, start: int) -> int:
    import contextlib
    import traceback

    from validators.dryrun import build_engine, dry_run
    from validators.report import json_report

    try:
        from validators.report import html as html_report
    except ImportError:  # a checkout without the HTML report: the leak check reads the JSON only
        html_report = None  # type: ignore[assignment]
    try:
        from validators.ssi import clamd_manager

        clamd: Any = clamd_manager.private_clamd(clamd_dir)
    except ImportError:
        clamd = contextlib.nullcontext({})
    plan = json.loads(plan_path.read_text())
    progress = (out_dir / "progress").open("a", buffering=1)
    with clamd as settings:
        engine = build_engine(settings)
        for index in range(start, len(plan)):
            entry = plan[index]
            progress.write(f"start {index}\n")
            began = time.monotonic()
            record: dict[str, Any] = {"name": entry["name"]}
            try:
                verdict = dry_run(Path(entry["path"]), settings=settings, engine=engine)
                (out_dir / f"{entry['name']}.json").write_text(json_report.render(verdict), encoding="utf-8")
                if html_report is not None:
                    (out_dir / f"{entry['name']}.html").write_text(html_report.render(verdict), encoding="utf-8")
            except Exception as error:  # an internal failure is an outcome to report, not a reason to stop
                record["crash"] = f"{type(error).__name__}: {str(error)[:200]}"
                record["trace"] = traceback.format_exc(limit=6)[-1500:]
            record["elapsed"] = round(time.monotonic() - began, 3)
            (out_dir / f"{entry['name']}.run.json").write_text(json.dumps(record))
            progress.write(f"done {index}\n")
    return 0


# --- driver ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    name: str
    family: str
    klass: str
    expect: str
    note: str
    category: str = ""
    form: str = ""
    status: str = "missing"
    quarantine: bool | None = None
    quarantine_expected: bool = False
    verdict: str = ""  # caught / missed / pass / false-alarm (ssi); error / warning / none (nir)
    why: str = ""
    rules: list[str] = field(default_factory=list)
    elapsed: float | None = None
    leaks: int = 0
    leak_where: list[str] = field(default_factory=list)
    problem: str = ""  # crash / hang / no-verdict


def _progress(out: Path) -> tuple[set[int], int | None]:
    """(indices done, index started and not done) from the worker's progress file."""
    path = out / "progress"
    lines = path.read_text().splitlines() if path.exists() else []
    started = [int(line.split()[1]) for line in lines if line.startswith("start ")]
    done = {int(line.split()[1]) for line in lines if line.startswith("done ")}
    in_flight = started[-1] if started and started[-1] not in done else None
    return done, in_flight


def run_worker(python: Path, plan: list[dict[str, str]], work: Path, timeout: float,
               env: Mapping[str, str]) -> dict[str, str]:
    """Run the worker over the plan, restarting it after a hang or a crash; returns {case name: problem}."""
    plan_path = work / "plan.json"
    plan_path.write_text(json.dumps(plan))
    out = work / "verdicts"
    out.mkdir(exist_ok=True)
    problems: dict[str, str] = {}
    start = 0
    while start < len(plan):
        clamd_dir = work / f"clamd-{start}"
        command = [str(python), str(Path(__file__).resolve()), "--worker", str(plan_path), str(out), str(clamd_dir),
                   str(start)]
        log_path = work / f"worker-{start}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(env), cwd=work,
                                       start_new_session=True)
            marker, since = (-1, None), time.monotonic()
            while process.poll() is None:
                time.sleep(0.2)
                done, in_flight = _progress(out)
                if (len(done), in_flight) != marker:
                    marker, since = (len(done), in_flight), time.monotonic()
                    _echo_progress(len(done), len(plan))
                elif in_flight is not None and time.monotonic() - since > timeout:
                    problems[plan[in_flight]["name"]] = f"hang: no verdict after {timeout:.0f} s"
                    _stop_worker(process, python, clamd_dir, env)
        done, in_flight = _progress(out)
        if in_flight is not None:
            name = plan[in_flight]["name"]
            problems.setdefault(name, f"worker died (exit {process.returncode}, log {log_path.name})")
            start = in_flight + 1
        elif process.returncode != 0:
            problems[f"worker@{start}"] = f"worker failed before any case (exit {process.returncode}): " + \
                log_path.read_text()[-400:]
            break
        else:
            start = len(plan)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    return problems


def _echo_progress(done: int, total: int) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r  {done}/{total} packages checked")
        sys.stderr.flush()


def _stop_worker(process: subprocess.Popen[bytes], python: Path, clamd_dir: Path, env: Mapping[str, str]) -> None:
    """Stop the worker we started (its own process group) and the private clamd it started."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(10)
            break
        except subprocess.TimeoutExpired:
            continue
    code = ("import sys; from pathlib import Path; from validators.ssi import clamd_manager; "
            "clamd_manager.stop(Path(sys.argv[1]))")
    subprocess.run([str(python), "-c", code, str(clamd_dir)], env=dict(env), timeout=60, check=False,
                   capture_output=True)


def iter_files(entries: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for entry in entries:
        yield entry
        yield from iter_files(entry.get("children") or [])


def all_findings(document: Mapping[str, Any]) -> list[dict[str, str]]:
    found = [dict(f, where="package") for f in document.get("package_findings") or []]
    for proof in document.get("proofs") or []:
        found += [dict(f, where=f"proof {proof.get('id')}") for f in proof.get("findings") or []]
        for entry in iter_files(proof.get("files") or []):
            found += [dict(f, where=entry.get("path", "?")) for f in entry.get("findings") or []]
    for entry in iter_files(document.get("unmapped_files") or []):
        found += [dict(f, where=entry.get("path", "?")) for f in entry.get("findings") or []]
    return found


def counted(finding: Mapping[str, Any]) -> bool:
    rule = str(finding.get("rule", ""))
    return not rule.startswith(IGNORED_FAMILIES) and rule not in ENVIRONMENT_RULES


def summarise(findings: list[dict[str, str]], limit: int = 4) -> str:
    kept = [f for f in findings if counted(f) and f.get("severity") != "info"]
    shown = Counter(f"{f['rule']}({f['severity'][0]})" for f in kept)
    text = ", ".join(f"{rule}x{n}" if n > 1 else rule for rule, n in shown.most_common(limit))
    return text or "no warning/error finding"


def score_ssi(outcome: Outcome, document: Mapping[str, Any]) -> None:
    findings = all_findings(document)
    errors = [f for f in findings if counted(f) and f.get("severity") == "error"
              and str(f.get("rule", "")).startswith(CAUGHT_FAMILIES)]
    outcome.rules = sorted({f["rule"] for f in errors})
    blocking = document.get("status") in ("fail", "error") and bool(errors)
    if outcome.expect == "caught":
        outcome.verdict = "caught" if blocking else "missed"
        if not blocking:
            outcome.why = f"status {document.get('status')}: {summarise(findings)}"
        elif all(r.startswith(("format.", "system.")) for r in outcome.rules):
            outcome.why = "weak: caught only by " + ", ".join(outcome.rules)
    else:
        outcome.verdict = "false-alarm" if errors else "pass"
        if errors:
            outcome.why = f"status {document.get('status')}: {summarise(errors)}"
            if all(f.get("rule") in POLICY_RULES for f in errors):
                outcome.why += " (format policy: the file type itself is refused)"


def score_nir(outcome: Outcome, document: Mapping[str, Any]) -> None:
    findings = [f for f in all_findings(document) if str(f.get("rule", "")).startswith("pii.")]
    detections = [f for f in findings if f.get("rule") not in PII_COVERAGE_RULES]
    level = max((SEVERITY_RANK.get(str(f.get("severity")), 0) for f in detections), default=-1)
    outcome.verdict = {2: "error", 1: "warning"}.get(level, "none")
    outcome.rules = sorted({f"{f['rule']}({f['severity']})" for f in findings})
    expected_level = {"error": 2, "warning": 1, "warn-only": 1}.get(outcome.expect)
    if expected_level is not None and level < expected_level:
        coverage = [f["rule"] for f in findings if f.get("rule") in PII_COVERAGE_RULES]
        outcome.why = f"got {outcome.verdict}" + (f" ({', '.join(sorted(set(coverage)))})" if coverage else "")
        outcome.why += f"; status {document.get('status')}"
    elif outcome.expect in ("clear", "warn-only") and level >= 2:
        outcome.why = "error on a value that is not a NIR: " + ", ".join(outcome.rules)


_HEX_DIGEST = re.compile(r"\b[0-9a-f]{40,64}\b")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)?")
_DIGIT_RUN = re.compile(r"\d(?:[ .\u00a0\u202f-]?\d)*")


def leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """The report excerpts that repeat a NIR body or 6+ consecutive digits of it."""
    cleaned = _TIMESTAMP.sub(" ", _HEX_DIGEST.sub(" ", text))
    grams: set[str] = set()
    for secret in secrets:
        grams |= {secret[i : i + 6] for i in range(len(secret) - 5) if secret[i : i + 6].isdigit()}
    found = []
    for match in _DIGIT_RUN.finditer(cleaned):
        digits = re.sub(r"\D", "", match.group())
        if len(digits) >= 6 and any(digits[i : i + 6] in grams for i in range(len(digits) - 5)):
            before = cleaned[max(0, match.start() - 30) : match.start()].replace("\n", " ").strip()[-30:]
            found.append(re.sub(r"\d", "#", before))  # the excerpt locates the leak without repeating digits
    return found


def load_corpus(seed: int, args: argparse.Namespace) -> list[Any]:
    sys.path.insert(0, str(ROOT))
    cases: list[Any] = []
    if args.only in (None, "ssi"):
        from fixtures.redteam import ssi_corpus

        cases += ssi_corpus.generate(seed, args.classes)
    if args.only in (None, "nir"):
        from fixtures.redteam import nir_corpus

        cases += nir_corpus.generate(seed, texts=args.nir, screens_count=args.screens, hidden=args.hidden)
    return cases


def cli_agreement(python: Path, cases: list[Any], paths: dict[str, Path], verdicts: Path, sample: int,
                  env: Mapping[str, str], rng: random.Random) -> list[str]:
    """Run a sample through the target's ``proofcheck dry-run --format json``; list disagreements."""
    proofcheck = python.parent / "proofcheck"
    disagreements = []
    for case in rng.sample(cases, min(sample, len(cases))):
        stored = verdicts / f"{case.name}.json"
        if not stored.exists():
            continue
        run = subprocess.run([str(proofcheck), "dry-run", str(paths[case.name]), "--format", "json"],
                             capture_output=True, env=dict(env), timeout=600, check=False)
        try:
            cli = json.loads(run.stdout)
        except json.JSONDecodeError:
            disagreements.append(f"{case.name}: CLI exit {run.returncode}, no JSON")
            continue
        api = json.loads(stored.read_text())

        def shape(document: Mapping[str, Any]) -> tuple[str, list[tuple[str, str, str]]]:
            return document.get("status", ""), sorted((f["rule"], f["severity"], f["where"])
                                                      for f in all_findings(document))

        if shape(cli) != shape(api):
            disagreements.append(f"{case.name}: CLI {shape(cli)[0]} vs engine {shape(api)[0]}")
    return disagreements


def ratio(numerator: int, denominator: int) -> str:
    return f"{numerator / denominator:.2f}" if denominator else "  - "


def report_ssi(outcomes: list[Outcome], show: int) -> dict[str, Any]:
    ssi = [o for o in outcomes if o.family == "ssi"]
    table: dict[str, Any] = {}
    print("\n== Issue 12: SSI (caught = fail/error with an error ssi./format./system. finding) ==")
    print(f"{'class':10} {'hostile':>7} {'caught':>6} {'missed':>6} {'weak':>5} {'quar.miss':>9} {'benign':>6} "
          f"{'false+':>6} {'problems':>8}")
    for klass in sorted({o.klass for o in ssi}):
        rows = [o for o in ssi if o.klass == klass]
        hostile = [o for o in rows if o.expect == "caught"]
        benign = [o for o in rows if o.expect == "benign"]
        entry = {
            "hostile": len(hostile), "caught": sum(o.verdict == "caught" for o in hostile),
            "missed": sum(o.verdict != "caught" for o in hostile),
            "weak": sum(o.why.startswith("weak") for o in hostile),
            "quarantine_missed": sum(o.quarantine_expected and not o.quarantine for o in hostile),
            "benign": len(benign), "false_alarms": sum(o.verdict != "pass" for o in benign),
            "problems": sum(bool(o.problem) for o in rows),
        }
        table[klass] = entry
        print(f"{klass:10} {entry['hostile']:7} {entry['caught']:6} {entry['missed']:6} {entry['weak']:5} "
              f"{entry['quarantine_missed']:9} {entry['benign']:6} {entry['false_alarms']:6} {entry['problems']:8}")
    missed = [o for o in ssi if o.expect == "caught" and o.verdict != "caught"]
    quarantine = [o for o in ssi if o.quarantine_expected and o.verdict == "caught" and not o.quarantine]
    alarms = [o for o in ssi if o.expect == "benign" and o.verdict != "pass"]
    for title, items in (("missed", missed), ("caught but not quarantined", quarantine), ("false alarms", alarms)):
        if items:
            print(f"\n-- {title} ({len(items)}) --")
            for o in items[:show]:
                print(f"  {o.name}: {o.note}\n      -> {o.problem or o.why or o.status}")
    return table


def _confusion(rows: list[Outcome], level: str) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) at ``level``; a key-valid look-alike in a context
    that is no label ("warn-only") must be warned about but not be an error: positive at warning level,
    negative at error level."""
    rank = {"error": 2, "warning": 1, "none": 0}
    threshold = 2 if level == "error" else 1
    positive_expects = ("error", "warning") if level == "error" else ("error", "warning", "warn-only")
    positive = [o for o in rows if o.expect in positive_expects]
    negative = [o for o in rows if o.expect not in positive_expects]
    tp = sum(rank.get(o.verdict, 0) >= threshold for o in positive)
    fn = len(positive) - tp
    fp = sum(rank.get(o.verdict, 0) >= threshold for o in negative)
    return tp, fp, fn


def report_nir(outcomes: list[Outcome], show: int) -> dict[str, Any]:
    nir = [o for o in outcomes if o.family == "nir"]
    if not nir:
        return {}
    result: dict[str, Any] = {"by_carrier": {}, "by_context": {}, "by_form": {}}
    print("\n== Issue 13: NIR (positives: real key-valid NIRs; negatives: near misses and cleared values) ==")
    for axis, key in (("carrier", "klass"), ("context", "category"), ("form", "form")):
        print(f"\n{axis:22} {'pos':>4} {'neg':>4} | {'P@err':>5} {'R@err':>5} | {'P@warn':>6} {'R@warn':>6} | "
              f"{'must-err miss':>13} {'err on neg':>10}")
        for value in sorted({getattr(o, key) for o in nir}):
            rows = [o for o in nir if getattr(o, key) == value]
            tp_e, fp_e, fn_e = _confusion(rows, "error")
            tp_w, fp_w, fn_w = _confusion(rows, "warning")
            must = sum(o.expect == "error" and o.verdict != "error" for o in rows)
            entry = {"positives": tp_w + fn_w, "negatives": sum(o.expect == "clear" for o in rows),
                     "precision_error": ratio(tp_e, tp_e + fp_e), "recall_error": ratio(tp_e, tp_e + fn_e),
                     "precision_warning": ratio(tp_w, tp_w + fp_w), "recall_warning": ratio(tp_w, tp_w + fn_w),
                     "labelled_not_error": must, "error_on_negative": fp_e}
            result[f"by_{axis}"][value] = entry
            print(f"{value:22} {entry['positives']:4} {entry['negatives']:4} | {entry['precision_error']:>5} "
                  f"{entry['recall_error']:>5} | {entry['precision_warning']:>6} {entry['recall_warning']:>6} | "
                  f"{must:13} {fp_e:10}")
    tp_e, fp_e, fn_e = _confusion(nir, "error")
    tp_w, fp_w, fn_w = _confusion(nir, "warning")
    result["overall"] = {"precision_error": ratio(tp_e, tp_e + fp_e), "recall_error": ratio(tp_e, tp_e + fn_e),
                         "precision_warning": ratio(tp_w, tp_w + fp_w), "recall_warning": ratio(tp_w, tp_w + fn_w)}
    leaked = [o for o in nir if o.leaks]
    result["leaks"] = {"cases": len(leaked), "excerpts": sum(o.leaks for o in leaked)}
    print(f"\noverall: P@err {result['overall']['precision_error']} R@err {result['overall']['recall_error']} | "
          f"P@warn {result['overall']['precision_warning']} R@warn {result['overall']['recall_warning']}")
    print(f"NIR digits leaked in report: {len(leaked)} case(s), {result['leaks']['excerpts']} excerpt(s)")
    misses = [o for o in nir if o.why or o.problem]
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for o in misses:
        by_kind["error on a non-NIR" if o.why.startswith("error on") else f"{o.expect} expected"].append(o)
    for title, items in sorted(by_kind.items()):
        print(f"\n-- {title} ({len(items)}) --")
        for o in items[:show]:
            print(f"  {o.name} [{o.klass}/{o.category}]: {o.note}\n      -> {o.problem or o.why}")
    if leaked:
        print(f"\n-- leaks ({len(leaked)}) --")
        for o in leaked[:show]:
            print(f"  {o.name} [{o.klass}]: before the digits: {o.leak_where[:2]}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=None, help="corpus seed (default: random, printed)")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="checkout whose .venv runs the engine")
    parser.add_argument("--json", type=Path, help="write every outcome and the tables here")
    parser.add_argument("--only", choices=("ssi", "nir"))
    parser.add_argument("--class", dest="classes", action="append", help="SSI classes to run (default: all)")
    parser.add_argument("--nir", type=int, default=240, help="NIR text cases (default 240)")
    parser.add_argument("--screens", type=int, default=60, help="NIR screenshots to OCR (default 60)")
    parser.add_argument("--hidden", type=int, default=60,
                        help="NIR cases in content beside what a file shows: metadata, notes, codes (default 60)")
    parser.add_argument("--cli-sample", type=int, default=3, help="cases also run through the CLI")
    parser.add_argument("--case-timeout", type=float, default=300.0, help="seconds before a case is a hang")
    parser.add_argument("--keep", type=Path, help="keep the corpus and verdicts in this folder")
    parser.add_argument("--show", type=int, default=60, help="misses listed per kind")
    parser.add_argument("--worker", nargs=4, metavar=("PLAN", "OUT", "CLAMD_DIR", "START"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        plan, out, clamd_dir, start = args.worker
        return worker(Path(plan), Path(out), Path(clamd_dir), int(start))
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    python = (args.checkout / ".venv" / "bin" / "python").absolute()
    if not python.exists():
        parser.error(f"no virtual environment at {python}")
    revision = _revision(args.checkout)
    print(f"seed {seed}; checkout {args.checkout.resolve()} at {revision}; engine python {python}")
    began = time.monotonic()
    cases = load_corpus(seed, args)
    print(f"corpus: {len(cases)} cases generated in {time.monotonic() - began:.1f} s")
    work = args.keep or Path(tempfile.mkdtemp(prefix="redteam-"))
    (work / "packages").mkdir(parents=True, exist_ok=True)
    paths = {case.name: case.write(work / "packages") for case in cases}
    plan = [{"name": case.name, "path": str(paths[case.name])} for case in cases]
    home = work / "home"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "PROOFCHECK_ANTIVIRUS_TEST_SIGNATURES": "accept", "PROOFCHECK_HOME": str(home),
           "PROOFCHECK_RULESETS": str(home / "rulesets"), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    problems = run_worker(python, plan, work, args.case_timeout, env)
    engine_seconds = time.monotonic() - started
    outcomes = [collect(case, work / "verdicts", problems) for case in cases]
    disagreements = cli_agreement(python, [c for c in cases if c.name not in problems], paths, work / "verdicts",
                                  args.cli_sample, env, random.Random(seed))  # noqa: S311 - sampling, not security
    tables = {"ssi": report_ssi(outcomes, args.show), "nir": report_nir(outcomes, args.show)}
    elapsed = sorted((o.elapsed or 0.0, o.name) for o in outcomes)
    print(f"\nengine: {len(cases)} packages in {engine_seconds:.0f} s (median {elapsed[len(elapsed) // 2][0]:.2f} s, "
          f"slowest {elapsed[-1][1]} {elapsed[-1][0]:.1f} s); problems (crash/hang): {len(problems)}")
    for name, problem in problems.items():
        print(f"  {name}: {problem}")
    print(f"CLI vs engine API on {min(args.cli_sample, len(cases))} sampled case(s): "
          + ("agree" if not disagreements else "; ".join(disagreements)))
    print(f"seed {seed} (re-run: --seed {seed})")
    if args.json:
        args.json.write_text(json.dumps({
            "seed": seed, "checkout": str(args.checkout.resolve()), "revision": revision, "tables": tables,
            "cli_disagreements": disagreements, "engine_seconds": round(engine_seconds, 1),
            "outcomes": [asdict(o) for o in outcomes],
        }, ensure_ascii=False, indent=1))
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _revision(checkout: Path) -> str:
    """The checkout's commit, and how many files differ from it (builders' worktrees are checked as they are)."""
    head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=False).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.splitlines()
    return f"{head}" + (f" + {len(dirty)} uncommitted file(s)" if dirty else "")


def collect(case: Any, verdicts: Path, problems: Mapping[str, str]) -> Outcome:
    outcome = Outcome(case.name, case.family, case.klass, case.expect, case.note, case.category, case.form,
                      quarantine_expected=case.quarantine)
    run_file = verdicts / f"{case.name}.run.json"
    if run_file.exists():
        run = json.loads(run_file.read_text())
        outcome.elapsed = run.get("elapsed")
        if run.get("crash"):
            outcome.problem = "crash: " + run["crash"]
    if case.name in problems:
        outcome.problem = problems[case.name]
    stored = verdicts / f"{case.name}.json"
    if not stored.exists():
        outcome.problem = outcome.problem or "no verdict"
        outcome.verdict = "missed" if case.family == "ssi" and case.expect == "caught" else "none"
        if case.family == "ssi" and case.expect == "benign":
            outcome.verdict = "false-alarm"
        outcome.why = outcome.problem
        return outcome
    text = stored.read_text(encoding="utf-8")
    document = json.loads(text)
    outcome.status = document.get("status", "?")
    outcome.quarantine = bool(document.get("quarantine"))
    if case.family == "ssi":
        score_ssi(outcome, document)
    else:
        score_nir(outcome, document)
    if case.secrets:
        html = verdicts / f"{case.name}.html"
        found = leaks(text, case.secrets) + leaks(html.read_text(encoding="utf-8") if html.exists() else "",
                                                  case.secrets)
        outcome.leaks, outcome.leak_where = len(found), found[:3]
    return outcome


if __name__ == "__main__":
    raise SystemExit(main())
