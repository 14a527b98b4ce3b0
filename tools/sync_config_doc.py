"""Regenerate docs/configuration.md from the settings' declarations (run after adding or changing a setting)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.settings import PipelineSettings  # noqa: E402
from flows.web.config import WebSettings  # noqa: E402
from validators.config_doc import CONFIG_DOC, render_config_doc  # noqa: E402
from validators.settings import EngineSettings  # noqa: E402


def main() -> int:
    (ROOT / CONFIG_DOC).write_text(render_config_doc([EngineSettings, PipelineSettings, WebSettings]), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
