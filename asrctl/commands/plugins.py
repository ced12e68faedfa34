"""`asrctl plugins`: what is installed and what each plugin provides."""

from __future__ import annotations

import json

import click


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
@click.option("--all", "include_builtin", is_flag=True, help="Include the core's built-in plugins.")
def plugins_command(as_json: bool, include_builtin: bool) -> None:
    """List installed plugins, their versions, the hooks they implement and what they register.

    \b
    Plugins are Python distributions with an "asrctl" entry point. Choose which load with:
      ASRCTL_LOAD_PLUGINS=a,b     load only these external plugins ("" = none)
      ASRCTL_DISABLE_PLUGINS=a,b  leave these out
      ASRCTL_STRICT_PLUGINS=1     fail instead of warning when a plugin breaks
    """
    from asrctl.plugins import get_plugins

    rows = get_plugins().summary(include_builtin=include_builtin)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="asrctl plugins")
    for column in ("plugin", "version", "hooks", "provides"):
        table.add_column(column)
    for row in rows:
        provides = "; ".join(
            f"{kind}: {', '.join(row[kind])}" for kind in ("backends", "formats", "trainers", "engines") if row[kind]
        )
        if row["error"]:
            provides = f"[red]failed: {escape(row['error'])}[/red]"
        name = row["name"] + (" (built-in)" if row["builtin"] else "")
        table.add_row(name, row["version"] or "", "\n".join(row["hooks"]) or "-", provides or "-")
    Console().print(table if rows else "No plugins installed.")
