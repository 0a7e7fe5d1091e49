"""Shared rate limits: the database and Redis backends count across limiter objects (as two
API nodes would), never store the limited value, and the backend follows the settings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from lifecert.config import Settings
from lifecert.services.ratelimit import (
    DatabaseRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    backend_name,
    make_limiter,
)
from lifecert.storage.db import Database
from lifecert.storage.models_cluster import RateLimitBucket
from server.deps import resolve_client_addr
from tests.conftest import DEPLOY_SECRETS, empty_postgres

SECRET = b"k" * 32
ID = "11010519491231002X"


def _sqlite(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'rl.sqlite'}")


def test_given_an_in_memory_limiter_when_capacity_is_used_then_the_next_take_waits() -> None:
    rl = RateLimiter(2, 100.0)
    assert [rl.take("a", now=0.0), rl.take("a", now=0.0)] == [0.0, 0.0]
    assert rl.take("a", now=0.0) == pytest.approx(50.0)
    assert rl.take("b", now=0.0) == 0.0


def test_given_two_database_limiters_on_one_database_when_both_take_then_they_share_the_bucket(
    tmp_path: Path,
) -> None:
    db = _sqlite(tmp_path)
    node_a = DatabaseRateLimiter(db, "session.id", 3, 3600.0, SECRET)
    node_b = DatabaseRateLimiter(Database(db.url, create=False), "session.id", 3, 3600.0, SECRET)
    t = 1_000_000.0
    got = [node_a.take(ID, now=t), node_b.take(ID, now=t), node_a.take(ID, now=t)]
    assert got == [0.0, 0.0, 0.0]
    wait = node_b.take(ID, now=t)
    assert wait == pytest.approx(1200.0)  # one token per 3600/3 s
    assert node_a.take("other", now=t) == 0.0
    # refilled after the wait, and a clock running behind never refills backwards
    assert node_a.take(ID, now=t + 1200.5) == 0.0
    assert node_b.take(ID, now=t - 5000) > 0


def test_given_a_database_limiter_when_it_stores_a_bucket_then_the_id_number_is_not_in_the_table(
    tmp_path: Path,
) -> None:
    db = _sqlite(tmp_path)
    DatabaseRateLimiter(db, "session.id", 3, 3600.0, SECRET).take(ID)
    with db.session() as s:
        keys = list(s.scalars(select(RateLimitBucket.key)))
    assert len(keys) == 1
    assert keys[0].startswith("session.id:")
    assert ID not in keys[0] and ID.lower() not in keys[0]


def test_given_idle_buckets_when_the_sweep_runs_then_only_stale_rows_of_that_scope_go(tmp_path: Path) -> None:
    db = _sqlite(tmp_path)
    keep = DatabaseRateLimiter(db, "other", 3, 100.0, SECRET, sweep_every=0)
    keep.take("x", now=0.0)
    rl = DatabaseRateLimiter(db, "s", 3, 100.0, SECRET, sweep_every=1)  # sweep on every take
    rl.take("old", now=0.0)
    rl.take("new", now=1000.0)
    with db.session() as s:
        keys = sorted(k.split(":")[0] for k in s.scalars(select(RateLimitBucket.key)))
    assert keys == ["other", "s"]


@pytest.mark.postgres
def test_given_postgres_when_many_threads_race_on_one_key_then_exactly_capacity_are_allowed(
    postgres_url: str,
) -> None:
    empty_postgres(postgres_url)
    db = Database(postgres_url)
    nodes = [DatabaseRateLimiter(Database(postgres_url, create=False), "race", 10, 3600.0, SECRET) for _ in range(4)]
    with ThreadPoolExecutor(8) as ex:
        waits = list(ex.map(lambda i: nodes[i % 4].take(ID, now=5_000.0), range(40)))
    assert sum(1 for w in waits if w == 0.0) == 10
    assert all(w > 0 for w in waits if w != 0.0)
    db.dispose()


@pytest.mark.redis
def test_given_two_redis_limiters_when_both_take_then_the_limit_holds_across_them(redis_url: str) -> None:
    a = RedisRateLimiter(redis_url, "t.shared", 3, 3600.0, SECRET)
    b = RedisRateLimiter(redis_url, "t.shared", 3, 3600.0, SECRET)
    assert [a.take(ID), b.take(ID), a.take(ID)] == [0.0, 0.0, 0.0]
    wait = b.take(ID)
    assert 3000 < wait <= 3601
    assert a.take("someone else") == 0.0


@pytest.mark.redis
def test_given_redis_when_a_key_is_limited_then_redis_holds_no_id_number(redis_url: str) -> None:
    import redis

    RedisRateLimiter(redis_url, "t.keys", 3, 3600.0, SECRET).take(ID)
    r = redis.Redis.from_url(redis_url)
    keys = [k.decode() for k in r.keys("*")]
    assert keys, "the limiter wrote nothing to Redis"
    assert not any(ID in k or ID.lower() in k for k in keys)


def test_given_settings_when_choosing_a_backend_then_redis_beats_database_and_memory_is_dev_sqlite_only(
    tmp_path: Path,
) -> None:
    base = {"data_dir": tmp_path}
    assert backend_name(Settings(env="development", **base)) == "memory"  # type: ignore[arg-type]
    assert backend_name(Settings(env="test", database_url="postgresql+psycopg2://x@h/db", **base)) == "database"  # type: ignore[arg-type]
    assert backend_name(Settings(env="test", redis_url="redis://127.0.0.1:1/0", **base)) == "redis"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refused outside development"):
        Settings(env="staging", ratelimit_backend="memory", **DEPLOY_SECRETS, **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs LIFECERT_REDIS_URL"):
        Settings(ratelimit_backend="redis", **base)  # type: ignore[arg-type]
    db = _sqlite(tmp_path)
    assert isinstance(make_limiter(Settings(env="test", ratelimit_backend="database", **base), db, "x", 1),  # type: ignore[arg-type]
                      DatabaseRateLimiter)


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        ("203.0.113.9", ["1.2.3.4"], [], "203.0.113.9"),  # no proxies configured: header ignored
        ("203.0.113.9", ["1.2.3.4"], ["127.0.0.1"], "203.0.113.9"),  # peer is not a trusted proxy
        ("127.0.0.1", ["198.51.100.7"], ["127.0.0.1"], "198.51.100.7"),
        ("127.0.0.1", ["6.6.6.6, 198.51.100.7"], ["127.0.0.1"], "198.51.100.7"),  # client-written hop ignored
        ("127.0.0.1", ["198.51.100.7, 10.0.0.5"], ["127.0.0.1", "10.0.0.0/8"], "198.51.100.7"),  # two proxies
        ("127.0.0.1", ["not-an-ip"], ["127.0.0.1"], "127.0.0.1"),  # malformed hop: not believed
        ("127.0.0.1", [], ["127.0.0.1"], "127.0.0.1"),
    ],
)
def test_given_forwarded_for_when_resolving_the_client_then_only_trusted_proxies_are_believed(
    peer: str, xff: list[str], trusted: list[str], expected: str
) -> None:
    import ipaddress

    nets = [ipaddress.ip_network(t) for t in trusted]
    assert resolve_client_addr(peer, xff, nets) == expected
