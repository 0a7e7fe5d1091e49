"""Text that ends up in a spreadsheet cell (CSV/XLSX exports and reports)."""

from __future__ import annotations

# A cell starting with one of these is evaluated as a formula by Excel, WPS and LibreOffice
# (=HYPERLINK(...), +cmd|..., -1+1, @SUM(...)); tab and CR start one after trimming.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """``value`` unchanged unless it is text a spreadsheet would run as a formula; then the
    text with a leading apostrophe (shown as typed, never evaluated). Numbers pass as numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
