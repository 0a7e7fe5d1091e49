"""The batch job's face pipeline on a Ray cluster (``lifecert enroll … --ray-address ADDR``).

Same job, other workers: :func:`enrollment.job.run_job` keeps reading the manifest, the
pre-checks, batching, the single writer (lifecert.services.enrollment_writer), resume and the
report; only the assessment of each photo moves to Ray.

- One :class:`EngineActor` per worker slot (``--workers N``; one CPU each) loads the engine
  once and then assesses photo bytes (decode → detect → gates → views → embed).
- Photos stream in: this process reads each photo and hands its bytes to an actor, with at
  most ``IN_FLIGHT_PER_ACTOR`` photos queued per actor, so memory stays flat for any size of
  run and no cluster node needs the photo folder or the blob store.
- Results flow back to this process, which stores the sealed photo in the blob store and
  gives the outcome to the one writer — exactly what the local pool's outcomes go through,
  so reason codes and resume behave the same.

Actors never see the encryption keys (their settings copy has a throwaway key) and never
touch the database.
"""

from __future__ import annotations

import base64
import os
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lifecert.domain.errors import ErrorCode, LifecertError

if TYPE_CHECKING:
    from enrollment.worker import Outcome, Task
    from lifecert.services.context import AppContext

IN_FLIGHT_PER_ACTOR = 4


class EngineActor:
    """Loads the engine once per Ray worker process; stateless between photos."""

    def __init__(self, settings: Any) -> None:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ORT_NUM_THREADS"):
            os.environ[var] = "1"
        import cv2

        from lifecert.engine.loader import load_engine

        cv2.setNumThreads(1)
        from lifecert.engine.fusion import make_second_embedder

        self.settings = settings
        self.engine = load_engine(settings)
        self.second = make_second_embedder(settings)

    def pid(self) -> int:
        return os.getpid()

    def assess(self, row_no: int, sha256: str, data: bytes) -> Any:
        from enrollment.worker import Outcome
        from lifecert.services.enrollment import assess_bytes

        s = self.settings
        a = assess_bytes(
            self.engine, data, s.quality, max_bytes=s.images.max_bytes, max_pixels=s.images.max_pixels,
            profile=s.embedding.enroll_profile, second=self.second,
        )
        return Outcome(row_no, sha256, a)


def _actor_settings(ctx: AppContext) -> Any:
    """The settings the actors need (engine, models, gates, profile) without the real secrets."""
    throwaway = base64.b64encode(os.urandom(32)).decode()
    from pydantic import SecretStr

    return ctx.settings.model_copy(
        update={"template_key": SecretStr(throwaway), "session_secret": SecretStr(throwaway), "redis_url": None,
                "database_url": "sqlite://"}
    )


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` (e.g. ``127.0.0.1:6379``) as a driver."""
    try:
        import ray
    except ImportError as exc:
        raise LifecertError("--ray-address needs Ray: pip install 'lifecert[ray]'",
                            code=ErrorCode.CONFIG_ERROR) from exc
    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise LifecertError(f"cannot join the Ray cluster at {address}: {exc}",
                                code=ErrorCode.CONFIG_ERROR) from None


def ray_outcomes(ctx: AppContext, tasks: list[Task], *, address: str, actors: int) -> Iterator[Outcome]:
    """Assess ``tasks`` on Ray actors; yields outcomes as they complete (any order), after storing
    each accepted photo in this deployment's blob store (``task.store_photo``)."""
    if not tasks:
        return
    import ray

    connect(address)
    remote_cls = ray.remote(num_cpus=1, max_restarts=2, max_task_retries=2)(EngineActor)
    settings = _actor_settings(ctx)  # passed by value: a restarted actor must not depend on an object-store ref
    pool: list[Any] = [remote_cls.remote(settings) for _ in range(max(1, actors))]  # type: ignore[attr-defined]
    max_bytes = ctx.settings.images.max_bytes
    try:
        queue = deque(tasks)
        running: dict[Any, tuple[Task, bytes]] = {}
        load = dict.fromkeys(range(len(pool)), 0)
        owner: dict[Any, int] = {}

        def submit() -> None:
            while queue:
                i = min(load, key=lambda k: load[k])
                if load[i] >= IN_FLIGHT_PER_ACTOR:
                    return
                t = queue.popleft()
                try:
                    data = t.source.read(max_bytes)
                except LifecertError as exc:  # grew past the limit since it was hashed
                    from enrollment.worker import Outcome
                    from lifecert.services.enrollment import Assessment

                    early.append(Outcome(t.row_no, t.sha256, Assessment(ErrorCode.IMAGE_TOO_LARGE, exc.message)))
                    continue
                ref = pool[i].assess.remote(t.row_no, t.sha256, data)
                running[ref] = (t, data)
                owner[ref] = i
                load[i] += 1

        early: list[Outcome] = []
        submit()
        while running or early or queue:
            while early:
                yield early.pop()
            if not running:
                submit()
                continue
            done, _ = ray.wait(list(running), num_returns=1)
            for ref in done:
                t, data = running.pop(ref)
                load[owner.pop(ref)] -= 1
                out: Outcome = ray.get(ref)
                if t.store_photo and out.assessment.width:
                    # Same rule as the local pool: accepted photos and reviewable rejects are kept;
                    # the writer syncs the store once per batch before rows refer to them.
                    ctx.photos.put(data, t.sha256, durable=False)
                yield out
            submit()
    finally:
        for a in pool:
            ray.kill(a)
