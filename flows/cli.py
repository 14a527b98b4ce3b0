"""The pipeline's sub-commands of ``proofcheck``: serve, demo, reindex, deploy, revalidate, valuesets, web.

``validators.cli`` calls ``register(subparsers)``; each handler returns the exit code. Prefect and boto3
are imported inside the handlers, so ``proofcheck --help`` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.serve import ServeConfigError, ServeOptions, serve

    options = ServeOptions(limit=args.limit, runner=not args.no_runner, reconcile=not args.no_reconcile)
    try:
        return serve(options=options)
    except ServeConfigError as exc:
        print(f"proofcheck serve: {exc}")
        return 2


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.devharness.demo import run_demo

    return run_demo(keep=args.keep, timeout=args.timeout)


def cmd_reindex(args: argparse.Namespace) -> int:
    from flows.pipeline import republish_index
    from flows.settings import PipelineSettings
    from flows.storage import Store

    settings = PipelineSettings.from_env()
    store = Store.connect(settings)
    count = republish_index(store, settings)
    print(f"{count} package(s) indexed; s3://{store.bucket}/{store.layout.index_html}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    """Set up a work-pool installation: the pool, the deployments table on it, the bucket if asked.

    Idempotent (the compose stack runs it at every start). The pool is created here, not by the first
    worker: the server refuses a deployment on a pool that does not exist, and workers started with
    ``--no-create-pool-if-not-found`` then say so when their pool name is wrong instead of polling a
    new empty pool.
    """
    from flows.deployments import runner_deployments

    ensure_work_pool(args.work_pool)
    if args.ensure_bucket:
        from flows.settings import PipelineSettings
        from flows.storage import Store

        settings = PipelineSettings.from_env()
        try:
            store = Store.connect(settings)
            store.ensure_bucket(versioning=True)
        except Exception as exc:  # the S3 server not up yet, or refusing (or missing) these credentials
            where = settings.s3_endpoint or "AWS"
            print(f"proofcheck deploy: bucket {settings.bucket} not ready: S3 at {where} unreachable or refusing "
                  f"({type(exc).__name__}); the deployments are not registered, run deploy again")
            return 1
        print(f"bucket {store.bucket} ready (versioning: {'on' if store.versioned else 'off'})")
    # Module entrypoints, no code storage: the workers run the same image, with the package installed.
    for deployment in runner_deployments(work_pool_name=args.work_pool):
        deployment.apply(work_pool_name=args.work_pool)
        print(f"deployment {deployment.name} registered on work pool {args.work_pool}")
    return 0


def ensure_work_pool(name: str) -> None:
    """The process work pool ``name``, created when missing (another deploy may create it meanwhile)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type="process"))
                print(f"work pool {name} created (type process)")
            except ObjectAlreadyExists:
                print(f"work pool {name} exists")
            return
        print(f"work pool {name} exists (type {pool.type})")


def cmd_revalidate(args: argparse.Namespace) -> int:
    """Re-validate stored packages under the ruleset in force (no Prefect server needed)."""
    import json

    from flows.revalidate import Revalidation, summary
    from flows.settings import PipelineSettings
    from flows.storage import Store

    settings = PipelineSettings.from_env()
    revalidation = Revalidation(Store.connect(settings), settings, full=args.full)
    record = revalidation.run(since=args.since, dry_run=args.dry_run)
    if args.dry_run:
        for outcome in record["packages"]:
            print(f"{outcome['package_key']} {outcome.get('mode')} {outcome.get('reason', '')}")
    print(json.dumps(summary(record), ensure_ascii=False))
    return 1 if any(o.get("mode") == "failed" for o in record["packages"]) else 0


def cmd_valuesets_sync(args: argparse.Namespace) -> int:
    """Fetch value sets into a new ruleset version; emit the Prefect event when a server is configured."""
    import json
    import os

    from flows.settings import PipelineSettings
    from flows.valueset_sync import configured_names, configured_source, emit, run_sync, store_of

    settings = PipelineSettings.from_env()
    outcome = run_sync(
        store_of(settings.engine_settings),
        args.source or configured_source(settings),
        args.valueset or configured_names(settings),
        timeout=args.timeout,
    )
    if os.environ.get("PREFECT_API_URL") and not args.no_event:
        from flows.prefect_compat import deliver_events

        emit(outcome)
        deliver_events(timeout=10)  # a short-lived command: send it before exiting
    print(json.dumps(outcome.to_dict(), ensure_ascii=False))
    return 1 if outcome.reason else 0


def _history(keyring: Any, package_key: str | None) -> int:
    from flows.history import verify_history

    return verify_history(keyring, package_key)


def _fetch(location: str) -> tuple[bytes, bytes]:
    from flows.history import fetch_stored

    return fetch_stored(location)


def register(subparsers: Any) -> None:
    from flows.settings import PipelineSettings
    from validators.attest.cli import register_pipeline
    from validators.config_cli import register_settings

    register_pipeline(history=_history, fetch=_fetch)  # `proofcheck verify --history` and s3:// verdicts
    register_settings("pipeline", PipelineSettings, PipelineSettings.from_env)  # checked at start, `config`
    from flows.web.config import WebSettings

    register_settings("web", WebSettings, WebSettings.load)  # the workbench's: checked by every command too
    from flows.web.server import register as register_web

    register_web(subparsers)  # `proofcheck web` and `proofcheck web-account` (the instructors' workbench)
    serve = subparsers.add_parser(
        "serve", help="run the S3 intake: queue events and reconcile -> validation runs"
    )
    serve.add_argument(
        "--limit", type=int, default=2, help="validation runs at once in this process (default 2)"
    )
    serve.add_argument(
        "--no-runner", action="store_true", help="only dispatch; work-pool workers run the flows"
    )
    serve.add_argument("--no-reconcile", action="store_true", help="do not list the inbox periodically")
    serve.set_defaults(handler=cmd_serve)

    demo = subparsers.add_parser("demo", help="the whole pipeline on this machine, on the fixture packages")
    demo.add_argument("--keep", action="store_true", help="keep the demo's work folder")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for all verdicts")
    demo.set_defaults(handler=cmd_demo)

    reindex = subparsers.add_parser("reindex", help="rebuild the verdict index and index page from S3")
    reindex.set_defaults(handler=cmd_reindex)

    deploy = subparsers.add_parser(
        "deploy", help="register the pipeline's deployments on a Prefect work pool"
    )
    deploy.add_argument("--work-pool", required=True, help="created (type process) if it does not exist")
    deploy.add_argument(
        "--ensure-bucket", action="store_true",
        help="also create $PROOFCHECK_BUCKET with versioning if it does not exist (S3 from the environment)",
    )
    deploy.set_defaults(handler=cmd_deploy)

    revalidate = subparsers.add_parser(
        "revalidate", help="re-validate stored packages whose verdict used an older ruleset (flows/REVALIDATION.md)"
    )
    revalidate.add_argument(
        "--since", metavar="RULESET", help="only verdicts computed under RULESET or a later version"
    )
    revalidate.add_argument(
        "--dry-run", action="store_true", help="list what would be re-run or carried; store nothing"
    )
    revalidate.add_argument(
        "--full", action="store_true", help="re-run every check of every stale package (no carry-over, no cache)"
    )
    revalidate.set_defaults(handler=cmd_revalidate)

    valuesets = subparsers.add_parser("valuesets", help="value sets (JDV) the CDA checks use")
    valuesets_sub = valuesets.add_subparsers(dest="valuesets_command", required=True)
    vs_sync = valuesets_sub.add_parser("sync", help="fetch value sets into a new ruleset version if they changed")
    vs_sync.add_argument(
        "--from", dest="source", help="folder or base URL (default: $PROOFCHECK_VALUESET_SOURCE, else the NOS)"
    )
    vs_sync.add_argument("--valueset", action="append", help="value set name (repeatable; default J66)")
    vs_sync.add_argument("--timeout", type=float, default=30.0, help="seconds per download (default 30)")
    vs_sync.add_argument("--no-event", action="store_true", help="do not emit the Prefect event")
    vs_sync.set_defaults(handler=cmd_valuesets_sync)
