"""AES-256-GCM for biometric data at rest (templates and photos).

Layout of a sealed blob: 1 version byte, 12-byte random nonce, ciphertext+tag.
Associated data binds a blob to its context (e.g. the template's model key and
pensioner), so a ciphertext copied onto another row fails to decrypt.
"""

from __future__ import annotations

import os

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from numpy.typing import NDArray

from lifecert.domain.errors import ErrorCode, LifecertError

_VERSION = b"\x01"


class Cipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise LifecertError("encryption key must be 32 bytes", code=ErrorCode.CONFIG_ERROR)
        self._aes = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aes.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes = b"") -> bytes:
        if len(blob) < 29 or blob[:1] != _VERSION:
            raise LifecertError("sealed data is malformed", code=ErrorCode.CONFIG_ERROR)
        try:
            return self._aes.decrypt(blob[1:13], blob[13:], aad)
        except InvalidTag as exc:
            raise LifecertError(
                "sealed data failed authentication (wrong key or tampered row)", code=ErrorCode.CONFIG_ERROR
            ) from exc

    def seal_embedding(self, vec: NDArray[np.float32], aad: bytes) -> bytes:
        return self.seal(np.asarray(vec, dtype="<f4").tobytes(), aad)

    def open_embedding(self, blob: bytes, aad: bytes) -> NDArray[np.float32]:
        return np.frombuffer(self.open(blob, aad), dtype="<f4").astype(np.float32)
