"""Regenerate the README's rule catalogue section from validators/catalogue (run after editing rules)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from validators.report.catalogue_doc import README_BEGIN, README_END, render_markdown  # noqa: E402


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    start = text.index(README_BEGIN)
    end = text.index(README_END) + len(README_END)
    readme.write_text(text[:start] + render_markdown().rstrip("\n") + text[end:], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
