"""The ``lifecert`` command.

Feature areas add their commands in ``lifecert/cli_<area>.py`` modules that
define ``register(app: typer.Typer) -> None``; they are discovered here, so
adding an area never edits this file. Every command reports a typed
:class:`LifecertError` as one clear line and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from lifecert.domain.errors import LifecertError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="lifecert: proof of life for pension agencies")
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(fn: F) -> F:
    """Turn expected failures into one line on stderr and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LifecertError as exc:
            err_console.print(f"[bold red]error[/] {exc.code}: {escape(exc.message)}", soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _register_areas() -> None:
    import lifecert

    for mod in sorted(pkgutil.iter_modules(lifecert.__path__), key=lambda m: m.name):
        if mod.name.startswith("cli_"):
            module = importlib.import_module(f"lifecert.{mod.name}")
            register = getattr(module, "register", None)
            if register is not None:
                register(app)


_register_areas()


def main() -> None:
    try:
        app()
    except LifecertError as exc:  # raised outside a wrapped command (e.g. settings)
        err_console.print(f"[bold red]error[/] {exc.code}: {escape(exc.message)}", soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
