"""The ``ssi`` family: is it safe to open this file? clamd, plus everything clamd does not see.

Each module holds one check: ``antivirus`` (clamd), ``pdf`` (active content), ``images`` (bombs, hidden
data), ``markup`` (SVG/HTML/XML active content), ``office`` (macros, remote templates), ``text`` (CSV
formulas, terminal escapes, bidi controls, names) and ``executables`` (executables and polyglots).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from validators.base import Validator


def make_validators(settings: Mapping[str, Any]) -> list[Validator]:
    from validators.registry import family_validators

    return family_validators(__name__, settings)
