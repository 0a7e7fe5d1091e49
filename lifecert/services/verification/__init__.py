"""Phone-browser proof of life, split by job:

- :mod:`.service` — :class:`VerificationService`: sessions, rate limits, records;
- :mod:`.paced` — server-paced capture: chunks per step, the step state machine, the decision;
- :mod:`.steps` — the rules of one step on plain data (settle, challenge, reaction time, hints);
- :mod:`.sessions` — nonce hashing, UTC times, upload metadata checks;
- :mod:`.frames` — frame decoding and analysis (detection, framing gates, quality, best frames);
- :mod:`.rules` — the decision rules on plain data;
- :mod:`.messages` — what the pensioner reads per reason code;
- :mod:`.store` — encrypted frame storage and the retention purge.
"""

from lifecert.services.verification.service import (
    SessionResult,
    VerificationService,
    load_frame_engine,
)
from lifecert.services.verification.store import PurgeReport, open_session_frames, purge_expired, sessions_dir

__all__ = [
    "PurgeReport",
    "SessionResult",
    "VerificationService",
    "load_frame_engine",
    "open_session_frames",
    "purge_expired",
    "sessions_dir",
]
