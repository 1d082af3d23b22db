"""Click plumbing shared by `marl-datagen` and `marl-bench`.

Bad input must end in one line naming the problem, exit code 2 and no traceback — click's own usage
errors included (click would print the usage block first).
"""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.console import Console

from datagen.errors import UserError


def fail(message: str) -> None:
    """Print `Error: message` on stderr and exit with code 2."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


class CliGroup(click.Group):
    """A click group whose bad-input errors are one line and exit 2."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except click.UsageError as err:
            fail(err.format_message())
        except click.ClickException as err:
            err.show()
            sys.exit(err.exit_code)
        except UserError as err:
            fail(str(err))
        sys.exit(result if isinstance(result, int) else 0)


def parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    """Turn `key=value` strings into env options, reading values as JSON where they parse.

    Raises:
        UserError: for a pair without `=`.
    """
    import json

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"option {pair!r} must look like key=value")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def make_console() -> Console:
    """A rich console writing to the current stdout; 160 columns wide when stdout is not a
    terminal (logs, pipes, CI), so tables are not cut to 80 columns."""
    console = Console()
    return console if console.is_terminal else Console(width=160)
