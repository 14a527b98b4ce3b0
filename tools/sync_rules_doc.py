"""Regenerate docs/rules.md, the rule reference table, from validators/catalogue (run after editing rules)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from validators.report.catalogue_doc import RULES_DOC, render_rules_doc  # noqa: E402


def main() -> int:
    (ROOT / RULES_DOC).write_text(render_rules_doc(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
