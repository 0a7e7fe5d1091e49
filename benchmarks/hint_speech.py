"""How long a Mandarin voice takes to say the page's hints and prompts: espeak-ng, NOT a phone's voice.

    python benchmarks/hint_speech.py        # ~5 s; needs `espeak-ng` (Debian: apt-get install espeak-ng)

The page says each live hint with ``speechSynthesis`` at rate 0.85 (mobile-web/app.js). How long that takes on a
phone was never measured; benchmarks/attacks.hint_speech_ms assumes 4.5 characters a second x 0.85 plus 250 ms
per comma. This script measures the one Mandarin synthesiser a Debian machine has: espeak-ng's ``cmn`` voice
(a formant synthesiser, robotic and slow next to a phone's neural voices), at 175 words a minute (its default,
the page's rate 1.0) and 149 (x 0.85). Per text of mobile-web/i18n.js's ``zh`` block: the length of the audio it
writes and where the voice ends in it (the last sample above a small level; the rest is trailing silence). The
synthesis is deterministic: one run per text is the measurement. What it can tell: how long a slow voice takes,
a bound for what the page and the server should allow for (steps.HINT_HEARD_WINDOW_MS, HINT_MAX_WINDOW_MS); not
what a pensioner's phone does.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import machine, now, publish
from benchmarks.attacks import SPEECH_RATE, hint_speech_ms, page_texts

VOICE = "cmn"
DEFAULT_WPM = 175  # espeak-ng's default speed: the page's rate 1.0
HINTS = ("TURN_MORE", "NOD_MORE", "LOOK_BACK", "LOOK_UP", "BLINK_FIRMLY", "OPEN_WIDER")
PROMPTS = ("turn_left", "turn_right", "nod", "open_mouth", "blink")
VOICED_LEVEL = 200  # of 32767: above the synthesiser's silence, below any voiced sample


def say_ms(text: str, wpm: int, wav: Path) -> tuple[int, int]:
    """(audio length, end of the voice) in ms of ``text`` said by espeak-ng's cmn voice at ``wpm``."""
    subprocess.run(["espeak-ng", "-v", VOICE, "-s", str(wpm), "-w", str(wav), text], check=True,
                   capture_output=True, timeout=60)
    with wave.open(str(wav)) as w:
        n, rate = w.getnframes(), w.getframerate()
        samples = np.frombuffer(w.readframes(n), dtype=np.int16)
    voiced = np.nonzero(np.abs(samples.astype(np.int32)) > VOICED_LEVEL)[0]
    end = int(voiced[-1]) + 1 if len(voiced) else 0
    return round(1000 * n / rate), round(1000 * end / rate)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng not found (Debian: apt-get install espeak-ng)")
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    texts = page_texts()
    slow = round(DEFAULT_WPM * SPEECH_RATE)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "say.wav"
        items = [("hint", c, texts[f"hint.{c}"]) for c in HINTS]
        items += [("prompt", c, texts[f"challenge.{c}"]) for c in PROMPTS]
        for kind, code, text in items:
            _a1, v1 = say_ms(text, DEFAULT_WPM, wav)
            a2, v2 = say_ms(text, slow, wav)
            model = hint_speech_ms(code, "turn_left") if kind == "hint" else None
            rows.append({"kind": kind, "code": code, "text": text, "rate_1_voiced_ms": v1,
                         "rate_085_voiced_ms": v2, "rate_085_audio_ms": a2, "assumed_ms": model})
    hints = [r["rate_085_voiced_ms"] for r in rows if r["kind"] == "hint"]
    ratio = [r["rate_085_voiced_ms"] / r["assumed_ms"] for r in rows if r["kind"] == "hint" and r["assumed_ms"]]
    assumed = [r["assumed_ms"] for r in rows if r["assumed_ms"]]
    lines = [
        "## How long a Mandarin voice takes to say the hints (`benchmarks/hint_speech.py`)",
        "",
        f"{now()}; **espeak-ng, NOT a phone's voice** ({version.split(' Data')[0].strip()}, voice `{VOICE}`, a formant "
        "synthesiser), the zh texts of mobile-web/i18n.js, one synthesis per text (deterministic). Rate 1.0 = "
        f"{DEFAULT_WPM} words/min (its default), the page's rate {SPEECH_RATE} = {slow}. *voiced*: where the voice "
        "ends in the audio; *audio*: with the trailing silence. *assumed*: benchmarks/attacks.hint_speech_ms "
        "(4.5 characters/s x 0.85 + 250 ms per comma), the model pad_eval's people hear hints with.",
        "",
        "| text | | characters | voiced, rate 1.0 (ms) | voiced, rate 0.85 (ms) | audio, rate 0.85 (ms) "
        "| assumed (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['kind']} `{r['code']}` | {r['text']} | {len(r['text'])} | {r['rate_1_voiced_ms']} | "
                     f"{r['rate_085_voiced_ms']} | {r['rate_085_audio_ms']} | {r['assumed_ms'] or ''} |")
    lines += [
        "",
        f"At the page's rate this voice says the action hints in {min(hints) / 1000:.1f}-{max(hints) / 1000:.1f} s, "
        f"{min(ratio):.1f}-{max(ratio):.1f} times the assumed {min(assumed) / 1000:.1f}-{max(assumed) / 1000:.1f} s; "
        "a phone's voice may well be faster, but no "
        "phone was measured. What production does with it: the page reports when a hint was heard and the "
        "step runs on for steps.HINT_HEARD_WINDOW_MS after that, bounded by steps.HINT_MAX_WINDOW_MS "
        "(lifecert/services/verification/steps.py), instead of counting on a fixed 3 s.",
        "",
        "Rerun: `python benchmarks/hint_speech.py`.",
    ]
    publish("hint_speech", "hint_speech", {"when": now(), "machine": machine(), "engine": version, "voice": VOICE,
                                           "wpm": {"rate_1": DEFAULT_WPM, "rate_085": slow}, "rows": rows},
            "\n".join(lines))


if __name__ == "__main__":
    main()
