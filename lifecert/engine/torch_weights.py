"""Read the tensors of a PyTorch checkpoint WITHOUT torch and without running its pickle.

A ``.pth`` file is Python pickle: loading it with ``pickle``/``torch.load`` executes whatever
callable the file names. This reader admits exactly what a state dict of plain tensors needs
and refuses everything else before it is called:

* globals: ``collections.OrderedDict`` (the dict and its empty hook dicts),
  ``torch._utils._rebuild_tensor_v2`` (replaced by a function that only records the tensor's
  storage, offset, size and stride) and the ``torch.<Type>Storage`` names (dtype markers);
  any other global raises :class:`WeightsError`;
* persistent ids: only ``('storage', <Type>Storage, key, location, numel, None)``;
* tensors are materialised with numpy from the raw storage bytes after bounds checks
  (offset + extent within the storage), always copied.

Format: torch's LEGACY serialisation (before torch 1.6, what MiniFASNet's upstream ships):
five consecutive pickles — magic number, protocol version 1001, sys_info (little endian
required), the object, the list of storage keys — then per key an int64 element count and
the storage's raw little-endian bytes. The newer zip format is refused with a clear error
(no pinned upstream file uses it).
"""

from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
MAX_FILE_BYTES = 256 << 20  # a state dict of this project's size is a few MB

_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
    "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


class WeightsError(ValueError):
    """The checkpoint is not a plain state dict this reader admits (or is damaged)."""


@dataclass(frozen=True, slots=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(_DTYPES[self.name])


@dataclass(slots=True)
class _Storage:
    key: str
    dtype: np.dtype[Any]
    numel: int
    data: NDArray[Any] | None = None


@dataclass(frozen=True, slots=True)
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _int_tuple(v: Any, what: str) -> tuple[int, ...]:
    if not isinstance(v, tuple) or len(v) > 8 or not all(type(x) is int and x >= 0 for x in v):
        raise WeightsError(f"tensor {what} must be a tuple of at most 8 non-negative ints, got {v!r}")
    return v


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> _TensorRef:
    """Stands in for torch._utils._rebuild_tensor_v2: records, never computes."""
    if not isinstance(storage, _Storage):
        raise WeightsError("a tensor's storage is not a storage reference")
    if type(storage_offset) is not int or storage_offset < 0:
        raise WeightsError(f"bad storage offset {storage_offset!r}")
    sz, st = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(sz) != len(st):
        raise WeightsError("tensor size and stride differ in length")
    if not isinstance(requires_grad, bool) or not (backward_hooks is None or isinstance(backward_hooks, dict)):
        raise WeightsError("unexpected tensor flags")
    if backward_hooks:
        raise WeightsError("a tensor carries backward hooks (code); refused")
    return _TensorRef(storage, storage_offset, sz, st)


class _Unpickler(pickle.Unpickler):
    """pickle with an allow-list of three kinds of global and one kind of persistent id."""

    def __init__(self, fh: BinaryIO, storages: dict[str, _Storage] | None) -> None:
        super().__init__(fh)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise WeightsError(f"checkpoint names the global {module}.{name}; only plain tensors are admitted")

    def persistent_load(self, pid: Any) -> Any:
        if self._storages is None:
            raise WeightsError("unexpected persistent id outside the object pickle")
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise WeightsError(f"unexpected persistent id {str(pid)[:80]}")
        _, stype, key, location, numel, view = pid
        if not isinstance(stype, _StorageType) or not isinstance(key, str) or not isinstance(location, str):
            raise WeightsError("malformed storage reference")
        if type(numel) is not int or numel < 0 or view is not None:
            raise WeightsError("malformed storage size or a storage view (unsupported)")
        found = self._storages.get(key)
        if found is None:
            found = self._storages[key] = _Storage(key, stype.dtype, numel)
        elif found.dtype != stype.dtype or found.numel != numel:
            raise WeightsError(f"storage {key} is declared twice differently")
        return found


def _load_plain(fh: BinaryIO, storages: dict[str, _Storage] | None = None) -> Any:
    try:
        return _Unpickler(fh, storages).load()
    except WeightsError:
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError, KeyError,
            RecursionError, MemoryError) as exc:
        raise WeightsError(f"not a readable checkpoint ({exc.__class__.__name__}: {str(exc)[:120]})") from exc


def _materialise(ref: _TensorRef) -> NDArray[Any]:
    s = ref.storage
    if s.data is None:
        raise WeightsError(f"storage {s.key} has no data in the file")
    if 0 in ref.size:
        return np.zeros(ref.size, dtype=s.dtype)
    extent = ref.offset + sum((n - 1) * st for n, st in zip(ref.size, ref.stride, strict=True)) + 1
    if extent > s.numel:
        raise WeightsError(f"a tensor reaches past the end of storage {s.key}")
    item = s.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(s.data[ref.offset :], shape=ref.size,
                                           strides=tuple(st * item for st in ref.stride), writeable=False)
    return np.array(view, copy=True)


def read_state_dict(data: bytes) -> dict[str, NDArray[Any]]:
    """The tensors of a legacy-format PyTorch state dict, by name, as numpy arrays (copies).

    Raises :class:`WeightsError` for anything else: the zip format, other globals (code),
    big-endian files, truncated or trailing data, tensors outside their storage."""
    if len(data) > MAX_FILE_BYTES:
        raise WeightsError(f"checkpoint is {len(data)} bytes; the limit is {MAX_FILE_BYTES}")
    if data[:4] == b"PK\x03\x04":
        raise WeightsError("torch zip-format checkpoint: only the legacy format is supported")
    fh = io.BytesIO(data)
    if _load_plain(fh) != MAGIC_NUMBER:
        raise WeightsError("not a PyTorch legacy checkpoint (magic number)")
    if _load_plain(fh) != PROTOCOL_VERSION:
        raise WeightsError("unsupported PyTorch checkpoint protocol")
    info = _load_plain(fh)
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise WeightsError("only little-endian checkpoints are supported")
    storages: dict[str, _Storage] = {}
    obj = _load_plain(fh, storages)
    keys = _load_plain(fh)
    if not isinstance(keys, list) or sorted(keys) != sorted(storages) or len(set(keys)) != len(keys):
        raise WeightsError("the storage key list does not match the storages the tensors use")
    for key in keys:
        s = storages[key]
        head = fh.read(8)
        if len(head) != 8:
            raise WeightsError("checkpoint is truncated (storage header)")
        count = int.from_bytes(head, "little", signed=True)
        if count != s.numel:
            raise WeightsError(f"storage {key} holds {count} elements, the object said {s.numel}")
        raw = fh.read(count * s.dtype.itemsize)
        if len(raw) != count * s.dtype.itemsize:
            raise WeightsError("checkpoint is truncated (storage data)")
        s.data = np.frombuffer(raw, dtype=s.dtype)
    if fh.read(1):
        raise WeightsError("unexpected bytes after the last storage")
    if not isinstance(obj, dict):
        raise WeightsError("checkpoint does not hold a dict of tensors")
    out: dict[str, NDArray[Any]] = {}
    for name, ref in obj.items():
        if not isinstance(name, str) or not isinstance(ref, _TensorRef):
            raise WeightsError(f"entry {str(name)[:60]} is not a tensor")
        out[name] = _materialise(ref)
    return out


def read_state_dict_file(path: Path) -> dict[str, NDArray[Any]]:
    return read_state_dict(Path(path).read_bytes())
