"""AES-256-GCM for biometric data at rest (templates, photos, verification frames), with a keyring.

Envelope (version 2): 1 version byte ``0x02``, 8-byte key id, 12-byte random nonce, ciphertext+tag;
the version byte and key id are authenticated with the caller's associated data. The key id is the
first 8 bytes of sha256("lifecert-key-id|" + key): it names the key without revealing it, so a blob
always says which key opens it. Version 1 blobs (``0x01`` + nonce + ciphertext, no key id) from
before the keyring are still opened, trying the current key and then the retired ones.

Associated data binds a blob to its context (e.g. the template's model key and pensioner), so a
ciphertext copied onto another row fails to decrypt. ``lifecert keys rotate`` re-seals every blob
under the current key (lifecert.services.keys); retired keys can then be removed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, LifecertError

_V1 = b"\x01"
_V2 = b"\x02"
KID_LEN = 8
_V2_HEADER = 1 + KID_LEN


def key_id(key: bytes) -> str:
    """Hex key id of a 32-byte key (16 hex digits)."""
    return hashlib.sha256(b"lifecert-key-id|" + key).digest()[:KID_LEN].hex()


def _bad(msg: str) -> LifecertError:
    return LifecertError(msg, code=ErrorCode.CONFIG_ERROR)


class Cipher:
    """Seals with the current key; opens with whichever configured key the blob names."""

    def __init__(self, key: bytes, retired: Sequence[bytes] = ()) -> None:
        for k in (key, *retired):
            if len(k) != 32:
                raise _bad("encryption key must be 32 bytes")
        self._current = key_id(key)
        self._keys: dict[str, AESGCM] = {key_id(k): AESGCM(k) for k in retired}
        self._keys[self._current] = AESGCM(key)  # current last: wins if a retired key is the same
        self._order = [self._current] + [key_id(k) for k in retired if key_id(k) != self._current]

    @property
    def current_key_id(self) -> str:
        return self._current

    @property
    def key_ids(self) -> list[str]:
        """Current first, then the retired keys."""
        return list(self._order)

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        header = _V2 + bytes.fromhex(self._current)
        return header + nonce + self._keys[self._current].encrypt(nonce, plaintext, header + aad)

    @staticmethod
    def key_id_of(blob: bytes) -> str | None:
        """The key id a blob names (None for a version 1 blob, which names none)."""
        if blob[:1] == _V2 and len(blob) >= _V2_HEADER:
            return blob[1:_V2_HEADER].hex()
        return None

    def needs_rotation(self, blob: bytes) -> bool:
        return self.key_id_of(blob) != self._current

    def open(self, blob: bytes, aad: bytes = b"") -> bytes:
        if blob[:1] == _V2 and len(blob) >= _V2_HEADER + 12 + 16:
            kid = blob[1:_V2_HEADER].hex()
            aes = self._keys.get(kid)
            if aes is None:
                raise _bad(f"sealed with key {kid}, which is not configured (LIFECERT_TEMPLATE_KEY or "
                           "LIFECERT_RETIRED_TEMPLATE_KEYS)")
            try:
                return aes.decrypt(blob[_V2_HEADER:_V2_HEADER + 12], blob[_V2_HEADER + 12:], blob[:_V2_HEADER] + aad)
            except InvalidTag as exc:
                raise _bad("sealed data failed authentication (tampered row or blob)") from exc
        if blob[:1] == _V1 and len(blob) >= 29:
            for kid in self._order:  # no key id: try each key, current first
                try:
                    return self._keys[kid].decrypt(blob[1:13], blob[13:], aad)
                except InvalidTag:
                    continue
            raise _bad("sealed data failed authentication (wrong key or tampered row)")
        raise _bad("sealed data is malformed")

    def reseal(self, blob: bytes, aad: bytes = b"") -> bytes:
        """The same plaintext sealed under the current key (for key rotation)."""
        return self.seal(self.open(blob, aad), aad)

    def seal_embedding(self, vec: NDArray[np.float32], aad: bytes) -> bytes:
        return self.seal(np.asarray(vec, dtype="<f4").tobytes(), aad)

    def open_embedding(self, blob: bytes, aad: bytes) -> NDArray[np.float32]:
        return np.frombuffer(self.open(blob, aad), dtype="<f4").astype(np.float32)
