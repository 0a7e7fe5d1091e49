"""``lifecert models pull`` for packs whose files are built here from a pinned upstream original.

MiniFASNet's upstream (minivision-ai/Silent-Face-Anti-Spoofing) publishes PyTorch ``.pth``
state dicts only. For each file of such a pack the manifest names ``upstream_url``,
``upstream`` (the original's file name), ``upstream_sha256`` and ``architecture``. The pull:

1. downloads each original (from ``upstream_url``, or ``<base>/<upstream>`` for a mirror),
   streaming, size-capped, with a connect/read timeout;
2. checks its sha256 against ``upstream_sha256`` BEFORE anything parses it;
3. reads its tensors with :mod:`lifecert.engine.torch_weights` (no torch, no code from the
   pickle) and builds the ONNX graph with :mod:`lifecert.engine.minifasnet_onnx`;
4. installs the built files through :func:`lifecert.engine.packs.install_pack`, which checks
   them against the manifest's pins (``converted_sha256``: the conversion is deterministic)
   and swaps the pack in only when every file passed. Any failure installs nothing.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

from lifecert.domain.errors import ErrorCode, ModelError
from lifecert.engine.packs import PackFile, PackSpec, _check_reachable, install_pack

MAX_UPSTREAM_BYTES = 64 << 20  # the MiniFASNet originals are ~1.9 MB each
READ_TIMEOUT_S = 60.0


def upstream_source(f: PackFile, base: str | None) -> str:
    """Where file ``f``'s original is fetched from: a mirror folder ``base`` or its upstream_url."""
    if base is not None:
        return base.rstrip("/") + "/" + str(f.upstream_name)
    return str(f.upstream_url)


def download_pinned(src: str, pin: str, *, pack: str, what: str, offline: str, connect_timeout: float) -> bytes:
    """The bytes at ``src`` if (and only if) their sha256 is ``pin``; MODEL_MISSING otherwise."""
    import requests

    _check_reachable(src, pack, offline, connect_timeout)
    h = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    try:
        with requests.get(src, stream=True, timeout=(connect_timeout, READ_TIMEOUT_S)) as r:
            if r.status_code != 200:
                raise ModelError(f"cannot download {what} from {src}: HTTP {r.status_code}; {offline}",
                                 code=ErrorCode.MODEL_MISSING)
            for chunk in r.iter_content(1 << 16):
                size += len(chunk)
                if size > MAX_UPSTREAM_BYTES:
                    raise ModelError(f"{src} is larger than {MAX_UPSTREAM_BYTES} bytes; refused",
                                     code=ErrorCode.PAYLOAD_TOO_LARGE)
                h.update(chunk)
                chunks.append(chunk)
    except requests.RequestException as exc:
        raise ModelError(f"cannot download {what} from {src} ({exc.__class__.__name__}); {offline}",
                         code=ErrorCode.MODEL_MISSING) from exc
    digest = h.hexdigest()
    if digest != pin:
        raise ModelError(f"{what} from {src} has sha256 {digest[:12]}…, the manifest pins {pin[:12]}…; "
                         "nothing was installed", code=ErrorCode.MODEL_MISSING)
    return b"".join(chunks)


def convert(f: PackFile, original: bytes) -> bytes:
    """Build file ``f`` from its verified upstream original (ModelError when it does not fit)."""
    from lifecert.engine.minifasnet_onnx import ARCHITECTURES, ArchitectureError, build_minifasnet
    from lifecert.engine.torch_weights import WeightsError, read_state_dict

    if f.architecture not in ARCHITECTURES:
        raise ModelError(f"{f.name}: no converter for architecture '{f.architecture}'", code=ErrorCode.CONFIG_ERROR)
    try:
        weights = read_state_dict(original)
        size = f.input_size[0] or 80
        return build_minifasnet(weights, str(f.architecture), input_size=size)
    except (WeightsError, ArchitectureError) as exc:
        raise ModelError(f"{f.upstream_name} cannot be converted to {f.name}: {exc}",
                         code=ErrorCode.MODEL_MISSING) from exc


def pull_converted(spec: PackSpec, models_dir: Path, *, base: str | None = None, manifest_path: Path | None = None,
                   connect_timeout: float = 10.0) -> dict[str, Any]:
    """Download, verify, convert and install every file of ``spec`` (see the module docstring)."""
    if not spec.convertible:
        raise ModelError(f"pack '{spec.name}' has files without a pinned upstream original and architecture",
                         code=ErrorCode.CONFIG_ERROR)
    offline = (f"copy the pack's files to this machine and run `lifecert models install {spec.name} --from DIR`, "
               f"or serve the upstream files and run `lifecert models pull {spec.name} --upstream-base URL`")
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    sources = []
    with tempfile.TemporaryDirectory(prefix=f".convert-{spec.name}-", dir=models_dir) as tmp:
        for f in spec.required_files:
            src = upstream_source(f, base)
            original = download_pinned(src, str(f.upstream_sha256), pack=spec.name, what=str(f.upstream_name),
                                       offline=offline, connect_timeout=connect_timeout)
            (Path(tmp) / f.name).write_bytes(convert(f, original))
            sources.append(src)
        return install_pack(Path(tmp), models_dir, spec.name, manifest_path=manifest_path,
                            source_label="converted from " + ", ".join(sources))
