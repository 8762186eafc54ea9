"""The ``labelwise`` command: every command parses options, calls the library and reports.

The commands live in one module per topic, each registering itself on the shared app of
:mod:`labelwise.cli._common`; this module imports them in a fixed order (which is the order of
``labelwise --help``) and holds the entry point.
"""

from __future__ import annotations

import importlib
import logging
from typing import Annotated

import typer
from rich.logging import RichHandler

from .._version import __version__
from ._common import app, err_console, out_console

COMMAND_MODULES = ("data", "audit", "train", "noise", "semi", "active", "crowd", "label", "loop", "demo")
for _module in COMMAND_MODULES:  # each registers its commands, in this order
    importlib.import_module(f"{__package__}.{_module}")

log = logging.getLogger("labelwise")


def _version(value: bool) -> None:
    if value:
        out_console.print(f"labelwise {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show progress messages (INFO).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Show errors only.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    level = logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING
    handler = RichHandler(console=err_console, show_time=False, show_path=False, markup=False)
    handler.setLevel(level)
    log.handlers = [h for h in log.handlers if not isinstance(h, RichHandler)] + [handler]
    log.setLevel(logging.INFO)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
