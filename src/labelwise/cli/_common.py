"""What every command shares: the app, its consoles, one-line errors, and the option vocabulary.

Options used by several commands are declared here once (``Out``, ``Seed``, ``Device``, ...);
the dataset-reading options are injected into any command that takes ``read: ReadOptions``
by :func:`reads_dataset`. Every mistake a user can make, a click usage error and a bad
``--config`` value included, is printed as one line with exit status 2.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import logging
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar, get_type_hints

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

try:  # typer ≥ 0.26 carries its own copy of click
    from typer._click.core import ParameterSource
    from typer._click.exceptions import BadParameter, ClickException, NoArgsIsHelpError
    from typer.exceptions import Abort
except ImportError:  # pragma: no cover - older typer on click
    # the same classes, from click itself: mypy sees them as other types than typer's copy
    from click.core import ParameterSource  # type: ignore[assignment]
    from click.exceptions import Abort, BadParameter, ClickException, NoArgsIsHelpError  # type: ignore[assignment]

from .._run import command_line_options
from ..data.options import ReadOptions
from ..errors import LabelwiseError

F = TypeVar("F", bound=Callable[..., Any])
out_console = Console()
err_console = Console(stderr=True)
log = logging.getLogger("labelwise")
CONFIG_META = "labelwise.config_file"


def error_line(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True, markup=True)


class Group(TyperGroup):
    """The ``labelwise`` group: click's errors become one line (exit 2), SIGTERM acts as Ctrl-C."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        previous = _terminate_as_interrupt()
        try:
            code = super().main(
                args, prog_name, complete_var, standalone_mode=False, windows_expand_args=windows_expand_args, **extra
            )
        except NoArgsIsHelpError as exc:
            exc.show()
            code = 0
        except ClickException as exc:
            error_line(_click_message(exc))
            code = exc.exit_code
        except Abort:
            err_console.print("interrupted; outputs already written are kept", highlight=False)
            code = 130
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _click_message(exc: ClickException) -> str:
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    param = getattr(exc, "param", None)
    if isinstance(exc, BadParameter) and ctx is not None and param is not None and param.name:
        if ctx.get_parameter_source(param.name) == ParameterSource.DEFAULT_MAP:
            message += f" (set in {ctx.meta.get(CONFIG_META, 'the --config file')})"
    if ctx is not None:
        message += f"; see `{ctx.command_path} --help`"
    return message


def _terminate_as_interrupt() -> Any:
    """Treat SIGTERM (batch schedulers, ``timeout``) like Ctrl-C, so work already done is kept."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. a test runner's worker): leave signals alone
        return None


class Command(TyperCommand):
    """A ``labelwise`` command: its parsed options become the ``config.yaml`` of the run it starts."""

    def invoke(self, ctx: Any) -> Any:
        with command_line_options({k: v for k, v in ctx.params.items() if k != "config"}):
            return super().invoke(ctx)


app = typer.Typer(
    name="labelwise",
    cls=Group,
    help="Turn a messy image dataset into a trustworthy classifier and a clean label set.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help, no boxes
)


def command(name: str | None = None) -> Callable[[F], F]:
    """Register a function as a ``labelwise`` command (``@command()``, like ``@app.command()``)."""
    return app.command(name, cls=Command)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the user's mistakes into one line + exit status 2 (and Ctrl-C into 130)."""
    try:
        yield
    except LabelwiseError as exc:
        log.debug("error: %s", exc)
        error_line(str(exc))
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("interrupted; outputs already written are kept", highlight=False)
        raise typer.Exit(130) from None
    except OSError as exc:  # the machine, not labelwise: a full disk, a read-only folder
        if exc.errno not in (errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.EDQUOT, errno.ENAMETOOLONG):
            raise
        error_line(f"{exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}")
        raise typer.Exit(2) from None


# ---------------------------------------------------------------- --config


def load_config(ctx: typer.Context, param: Any, value: Path | None) -> Path | None:
    """Eager callback: a YAML mapping of option names becomes the command's defaults.

    Flags given on the command line still win; an unknown key is an error naming it.
    """
    if value is None:
        return value
    try:
        data = yaml.safe_load(Path(value).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise typer.BadParameter(f"{value}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{value}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{value}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{value}: expected a mapping of option names to values")
    names = {p.name for p in ctx.command.params if p.name not in {"config"}}
    resolved = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(k for k in resolved if k not in names)
    if unknown:
        raise typer.BadParameter(
            f"{value}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}"
        )
    ctx.default_map = {**(ctx.default_map or {}), **resolved}
    ctx.meta[CONFIG_META] = str(value)
    return value


# ---------------------------------------------------------------- shared options

Config = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="YAML file of option values (keys as option names); flags on the command line win.",
        is_eager=True,
        callback=load_config,
        dir_okay=False,
    ),
]
Data = Annotated[
    Path,
    typer.Argument(
        metavar="DATA",
        show_default=False,
        help="Image folder (root/<class>/...), CSV/TSV of file names and labels, ordered label .txt, .npz, "
        "or a labelwise table (.csv/.parquet).",
    ),
]
Overwrite = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace the results of an earlier run in --out (they are removed as a whole)."),
]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Threads for reading and checking images.")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
EngineName = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="local (default, or $LABELWISE_ENGINE) or ray: run the parallel parts on Ray (pip install 'labelwise[ray]').",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address", help="Ray cluster to join: auto or host:port (default $RAY_ADDRESS, else a local Ray)."
    ),
]
Html = Annotated[bool, typer.Option("--html/--no-html", help="Also write report.html.")]
CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Embedding cache (default $LABELWISE_CACHE_DIR or ~/.cache/labelwise)."),
]
Size = Annotated[
    int | None, typer.Option("--size", min=1, help="Input side in pixels (default per backbone or model).")
]
Weights = Annotated[
    Path | None, typer.Option("--weights", help="Weights file (a state_dict) for the backbone or network.")
]
Pca = Annotated[int | None, typer.Option("--pca", min=1, help="Reduce the embeddings to N principal components.")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", min=1, help="Images per batch (default per model).")]


Out = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]


def backbone_option(help: str) -> Any:
    """The ``--backbone`` option's typer metadata: ``backbone: Annotated[str | None, backbone_option("...")]``."""
    from ..features.backbones import BACKBONES

    return typer.Option("--backbone", "-b", help=BACKBONES.help(help))


def print_kind(kind: str) -> None:
    """Print a registry's names with their one-line descriptions."""
    from .._registry import KINDS

    for name, description in KINDS[kind].describe():
        out_console.print(f"  {name:<20} {description}", soft_wrap=True, highlight=False, markup=False)


def choice_help(kind: str, lead: str) -> str:
    """Help text for an option naming an entry of the registry ``kind`` (see ``labelwise list``)."""
    from .._registry import KINDS

    return KINDS[kind].help(lead)


# ---------------------------------------------------------------- dataset-reading options

_READ_OPTIONS: list[tuple[str, Any, Any]] = [
    (
        "images",
        Annotated[
            Path | None,
            typer.Option("--images", help="Image folder for a CSV (paths relative to it) or an ordered label .txt."),
        ],
        None,
    ),
    ("unlabeled", Annotated[Path | None, typer.Option("--unlabeled", help="Extra folder of unlabeled images.")], None),
    (
        "filename_col",
        Annotated[
            str | None, typer.Option("--filename-col", help="CSV column (name or 0-based position) of file names.")
        ],
        None,
    ),
    (
        "label_col",
        Annotated[str | None, typer.Option("--label-col", help="CSV column (name or position) of labels.")],
        None,
    ),
    (
        "split_col",
        Annotated[str | None, typer.Option("--split-col", help="CSV column with split names or is_valid booleans.")],
        None,
    ),
    ("suffix", Annotated[str, typer.Option("--suffix", help="Appended to CSV file names (e.g. .jpg).")], ""),
    (
        "labels_key",
        Annotated[str | None, typer.Option("--labels-key", help="Array of labels in an .npz (default: labels/y).")],
        None,
    ),
    (
        "classes",
        Annotated[Path | None, typer.Option("--classes", help="classes.json fixing the class list and order.")],
        None,
    ),
    (
        "max_pixels",
        Annotated[
            int | None,
            typer.Option(
                "--max-pixels",
                min=0,
                help="Largest image in pixels (default Pillow's 178,956,970; 0: no limit); larger ones are problems.",
            ),
        ],
        None,
    ),
    (
        "allow_outside_root",
        Annotated[
            bool,
            typer.Option(
                "--allow-outside-root",
                help="Keep CSV rows whose file lies outside the image root (left out and listed as problems by default).",
            ),
        ],
        False,
    ),
]
READ_NAMES = tuple(name for name, _, _ in _READ_OPTIONS)


def reads_dataset(fn: F) -> F:
    """Give a command that takes ``read: ReadOptions`` the dataset-reading options (declared once
    here), placed where ``read`` stands in its signature."""
    sig = inspect.signature(fn)
    hints = get_type_hints(fn, include_extras=True)
    params = []
    for p in sig.parameters.values():
        if p.name == "read":
            params += [
                inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d, annotation=a)
                for n, a, d in _READ_OPTIONS
            ]
        else:
            params.append(p.replace(annotation=hints.get(p.name, p.annotation)))

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        values = {n: kwargs.pop(n) for n in READ_NAMES}
        for key in ("filename_col", "label_col", "split_col"):
            if values[key] is not None and not str(values[key]).strip():
                raise typer.BadParameter(
                    "a column name or position cannot be empty", param_hint=f"--{key.replace('_', '-')}"
                )
        return fn(read=ReadOptions(**values), **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper  # type: ignore[return-value]


def comma_list(value: str | None, option: str) -> list[str] | None:
    """``"a, b"`` → ``["a", "b"]``; a one-line error for a list of nothing."""
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise LabelwiseError(f"{option}: give at least one name")
    return names
