"""Phone-browser proof of life, split by job:

- :mod:`.service` — :class:`VerificationService`: sessions, uploads, analysis orchestration, records;
- :mod:`.sessions` — session look-up, single-use nonce claim, upload metadata checks;
- :mod:`.frames` — frame decoding and analysis (detection, framing gates, quality, best frames);
- :mod:`.rules` — the decision rules on plain data;
- :mod:`.messages` — what the pensioner reads per reason code;
- :mod:`.store` — encrypted frame storage and the retention purge.
"""

from lifecert.services.verification.service import (
    SessionResult,
    SessionStart,
    VerificationService,
    load_frame_engine,
)
from lifecert.services.verification.store import PurgeReport, open_frames_blob, purge_expired, sessions_dir

__all__ = [
    "PurgeReport",
    "SessionResult",
    "SessionStart",
    "VerificationService",
    "load_frame_engine",
    "open_frames_blob",
    "purge_expired",
    "sessions_dir",
]
