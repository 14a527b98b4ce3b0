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
    from validators.ssi.antivirus import AntivirusValidator
    from validators.ssi.executables import ExecutablesValidator
    from validators.ssi.images import ImagesValidator
    from validators.ssi.markup import MarkupValidator
    from validators.ssi.office import OfficeValidator
    from validators.ssi.pdf import PdfValidator
    from validators.ssi.text import TextValidator

    return [
        ExecutablesValidator(),
        PdfValidator(settings),
        ImagesValidator(settings),
        MarkupValidator(),
        OfficeValidator(),
        TextValidator(),
        # Last: the cheap structural checks have already refused what would only waste clamd's time.
        AntivirusValidator(settings),
    ]
