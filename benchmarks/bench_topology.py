"""Warm pool vs work-pool workers, on the production topology: the executors compared on the same burst.

    .venv/bin/python benchmarks/bench_topology.py [--packages 16] [--warm-limit 2] [--json F]

``bench_scale.py --topology production --configs 2p,1w``: the parts of ``docker/compose.yaml`` as
processes (``flows.devharness.topology``: SeaweedFS with no events, so the bridge lists every 2 s; a Prefect server
on Postgres; the verdict index on Postgres; one clamd per machine), then the same light burst run by
two machines of ``prefect worker start`` (``2p``), then by ``proofcheck serve`` and its warm pool
(``1w``). The numbers go to ``BENCHMARKS.md`` with ``make bench``; the reading is in ``docs/SCALING.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import main

if __name__ == "__main__":
    sys.exit(main(["--topology", "production", "--configs", "2p,1w", *sys.argv[1:]]))
