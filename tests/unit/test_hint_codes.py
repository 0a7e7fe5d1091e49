"""The live hint codes the server sends are the ones the API declares and the page can say, in both
languages (a code the page does not know is silently dropped by its setHints)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from lifecert.domain.challenges import HINT_CODES
from server.schemas import HintCode

WEB = Path(__file__).resolve().parents[2] / "mobile-web"


def _lang_blocks() -> dict[str, str]:
    text = (WEB / "i18n.js").read_text(encoding="utf-8")
    zh, en = text.index("\n  zh: {"), text.index("\n  en: {")
    return {"zh": text[zh:en], "en": text[en:]}


def test_given_the_server_hint_codes_when_compared_with_the_api_and_the_page_then_every_code_is_declared_and_said(
) -> None:
    assert set(typing.get_args(HintCode)) == set(HINT_CODES)
    for lang, block in _lang_blocks().items():
        said = set(re.findall(r'"hint\.([A-Z_]+)"\s*:\s*"[^"]+"', block))
        assert set(HINT_CODES) <= said, (lang, sorted(set(HINT_CODES) - said))
    app = (WEB / "app.js").read_text(encoding="utf-8")
    m = re.search(r"HINT_PRIORITY = \[([^\]]*)\]", app)
    assert m is not None
    assert set(re.findall(r'"([A-Z_]+)"', m.group(1))) == set(HINT_CODES)


def test_given_the_page_when_it_tells_action_hints_apart_then_the_same_codes_as_the_server() -> None:
    # the page reports when an ACTION hint was heard (the server grows that step's window from then on)
    from lifecert.services.verification.steps import ACTION_HINT_CODES

    app = (WEB / "app.js").read_text(encoding="utf-8")
    m = re.search(r"ACTION_HINTS = new Set\(\[([^\]]*)\]\)", app)
    assert m is not None
    assert set(re.findall(r'"([A-Z_]+)"', m.group(1))) == set(ACTION_HINT_CODES)
