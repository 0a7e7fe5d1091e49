"""Plain types, errors and decision policy. No I/O here."""
