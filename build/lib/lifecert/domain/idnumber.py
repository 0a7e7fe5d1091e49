"""Chinese resident identity numbers (GB 11643-1999).

18 characters: 6-digit administrative region, 8-digit birth date (YYYYMMDD),
3-digit sequence (odd = male, even = female), and an ISO 7064 MOD 11-2 check
character (0-9 or X). A number that fails any check is rejected, never repaired.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from lifecert.domain.errors import BadIdNumber

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_PATTERN = re.compile(r"^\d{17}[\dX]$")


def check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise BadIdNumber("need exactly 17 digits to compute a check character")
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


@dataclass(frozen=True, slots=True)
class IdNumber:
    value: str
    region_code: str
    birth_date: date
    sex: str  # "M" | "F"

    def masked(self) -> str:
        """220202********123X style: region kept, birth date hidden, last four kept."""
        return mask_id_number(self.value)


def normalize_id_number(raw: str) -> str:
    """Remove all whitespace (also full-width and tabs), map full-width digits/X and lower-case x.
    No other repairs."""
    return "".join(raw.translate(_FULLWIDTH).split()).upper()


_FULLWIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)} | {"Ｘ": "X", "ｘ": "X"})


def parse_id_number(raw: str, *, today: date | None = None) -> IdNumber:
    """Validate and decode an 18-character ID number; raise :class:`BadIdNumber`."""
    s = normalize_id_number(raw)
    if not _PATTERN.match(s):
        raise BadIdNumber(f"ID number must be 17 digits plus a digit or X (got {len(s)} characters)")
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError as exc:
        raise BadIdNumber("ID number holds an impossible birth date") from exc
    if born.year < 1880 or born > (today or date.today()):
        raise BadIdNumber("ID number holds a birth date out of range")
    if check_char(s[:17]) != s[17]:
        raise BadIdNumber("ID number check digit does not match (GB 11643-1999)")
    sex = "M" if int(s[16]) % 2 == 1 else "F"
    return IdNumber(value=s, region_code=s[:6], birth_date=born, sex=sex)


def is_valid_id_number(raw: str) -> bool:
    try:
        parse_id_number(raw)
    except BadIdNumber:
        return False
    return True


def mask_id_number(value: str) -> str:
    if len(value) != 18:
        return "*" * len(value)
    return value[:6] + "*" * 8 + value[14:]


def make_id_number(region: str, born: date, seq: int) -> str:
    """Build a valid ID number (for synthetic test data and fixtures)."""
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + check_char(first17)
