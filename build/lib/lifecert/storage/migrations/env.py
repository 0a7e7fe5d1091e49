from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import engine_from_config, pool

from lifecert.storage.db import Base, import_all_models

import_all_models()


def render_item(type_: str, obj: object, autogen_context: object) -> str | bool:
    """Render lifecert's TZDateTime (a behaviour-only wrapper) as a plain timezone-aware DateTime."""
    if type_ == "type" and type(obj).__name__ == "TZDateTime":
        return "sa.DateTime(timezone=True)"
    return False

target_metadata = Base.metadata
config = context.config
OPTIONS: dict[str, Any] = {"target_metadata": target_metadata, "render_as_batch": True, "render_item": render_item}


def run() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = config.attributes.get("engine") or engine_from_config(
        config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        context.configure(connection=connection, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
