"""The ``attnas`` command line."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Search where and which attention modules go in a CNN.", no_args_is_help=True
)


@app.command()
def search(config: str = typer.Argument("configs/quickstart.yaml")) -> None:
    """Run a search (not yet available: lands with the search issue)."""
    typer.echo("attnas search is not yet available in this version", err=True)
    raise typer.Exit(2)


@app.command()
def version() -> None:
    """Print the version."""
    from importlib.metadata import version as v

    typer.echo(v("attnas"))
