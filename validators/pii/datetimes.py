"""Compact date-times: a NIR-shaped number whose digits read as ``yyyymmddHHMMSS`` plus one fraction digit.

Logs, HL7 v2 and file names write time stamps without separators. Fifteen such digits starting with
19 or 20 have a possible NIR structure (sex 1 or 2, a year, a month 01-12 or 20-99...) and pass the key
about once in 97. The time stamp is a structure that says what the number probably is, but not a proof:
a real NIR of a man born in 1999 or a woman born in 2000 can read as one. So it lowers a key-valid
number to a warning, never clears it, and a label naming it as a NIR keeps it an error (``decide.py``).
"""

from __future__ import annotations

import calendar

FIRST_YEAR = 1990
LAST_YEAR = 2099


def compact_datetime(digits: str) -> bool:
    """Whether ``digits`` (14 or 15 digits, no separator) read as a plausible ``yyyymmddHHMMSS[f]``."""
    if len(digits) not in (14, 15) or not digits.isdigit():
        return False
    year, month, day = int(digits[0:4]), int(digits[4:6]), int(digits[6:8])
    hour, minute, second = int(digits[8:10]), int(digits[10:12]), int(digits[12:14])
    if not FIRST_YEAR <= year <= LAST_YEAR or not 1 <= month <= 12:
        return False
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return False
    return hour <= 23 and minute <= 59 and second <= 59


__all__ = ["FIRST_YEAR", "LAST_YEAR", "compact_datetime"]
