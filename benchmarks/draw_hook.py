"""A fresh production draw for EVERY session of a benchmark whose sessions are all one enrolled person.

``VerificationService._challenges_for`` gives a pensioner's new session the set of her session created within the
session lifetime (300 s) in a new order, else a fresh ``lifecert.domain.challenges.draw``. A latency benchmark runs
every session as the one person its video shows (the talking-head clip; enrolling her again under other ID numbers
would make 1:N find her twice), so production's rule would give one drawn set per run. :func:`install` replaces
that method so each session gets its own ``challenges.draw(self.rng)`` (production's draw function and rng), as a
crowd of different pensioners would; the fixed list (``LIFECERT_FIXED_CHALLENGES``) still wins. Benchmarks only:
benchmarks/serve_hook/sitecustomize.py installs it in a benchmark's ``lifecert serve`` (and its uvicorn workers)."""

from __future__ import annotations

from typing import Any


def install() -> None:
    from lifecert.domain import challenges
    from lifecert.services.verification.service import VerificationService

    def fresh(self: Any, db: Any, pensioner_id: int) -> list[str]:
        fixed = self.ctx.settings.fixed_challenge_list
        return list(fixed) if fixed else challenges.draw(self.rng)

    VerificationService._challenges_for = fresh  # type: ignore[method-assign]
