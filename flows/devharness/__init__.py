"""The development harness, not production code.

It starts local stand-ins of the production parts on free ports and stops them: moto's S3 server or
SeaweedFS, a Prefect server, Postgres, clamd (``services``); the whole pipeline on one machine
(``local``); the embedded demo of ``make demo`` (``demo``); the compose stack as processes for the
topology tests (``topology``). The tests, the demo and the benchmarks use it; production runs the stack of
``docker/compose.yaml`` (see docs/operations.md), and nothing under ``flows/`` outside this package
imports it except the ``proofcheck demo`` command.
"""
