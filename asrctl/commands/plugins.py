"""`asrctl plugins`: what is installed and what each plugin provides."""

from __future__ import annotations

import json

import click


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table.")
@click.option("--all", "include_builtin", is_flag=True, help="Include the core's built-in plugins.")
def plugins_command(as_json: bool, include_builtin: bool) -> None:
    """List installed plugins, their versions, the hooks they implement and what they register.

    A backend's own options (`asrctl infer -O KEY=VALUE`), an engine's (`-E KEY=VALUE`), a
    segmenter's (`--vad NAME -V KEY=VALUE`) and a trainer's own settings (`asrctl finetune
    --set KEY=VALUE`) are listed under the table.

    \b
    Plugins are Python distributions with an "asrctl" entry point. Choose which load with:
      ASRCTL_LOAD_PLUGINS=a,b     load only these external plugins ("" = none)
      ASRCTL_DISABLE_PLUGINS=a,b  leave these out
      ASRCTL_STRICT_PLUGINS=1     fail instead of warning when a plugin breaks
    """
    from asrctl.plugins import backends, engines, get_plugins, segmenters, trainers
    from asrctl.train.settings import type_label

    rows = get_plugins().summary(include_builtin=include_builtin)
    backend_options = {spec.name: spec.extra_options for spec in backends() if spec.extra_options}
    languages = {spec.name: spec.languages for spec in backends()}
    engine_options = {spec.name: spec.options for spec in engines() if spec.options}
    segmenter_options = {spec.name: spec.options for spec in segmenters() if spec.options}
    trainer_settings = {spec.name: {s.name: f"[{type_label(s)}] {s.help}" for s in spec.settings}
                        for spec in trainers() if spec.settings}
    for row in rows:
        row["backend_options"] = {name: backend_options[name] for name in row["backends"] if name in backend_options}
        row["backend_languages"] = {name: languages[name] for name in row["backends"] if name in languages}
        row["engine_options"] = {name: engine_options[name] for name in row["engines"] if name in engine_options}
        row["segmenter_options"] = {name: segmenter_options[name] for name in row["segmenters"]
                                    if name in segmenter_options}
        row["trainer_settings"] = {name: trainer_settings[name] for name in row["trainers"] if name in trainer_settings}
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        print_table(rows)


def describe_languages(languages: dict) -> str:
    """A backend's `languages` in words: "per row (--language-key), detects, translates"."""
    flags = ", ".join(f"--{name.replace('_', '-')}-key" for name in languages["per_row"])
    return ", ".join([*([f"per row ({flags})"] if flags else []), *(["detects"] if languages["detects"] else []),
                      *(["translates"] if languages["translates"] else [])])


def print_table(rows: list[dict]) -> None:
    """The plugins table of `asrctl plugins` from its JSON rows, then each backend's -O options."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not rows:
        console.print("No plugins installed.")
        return
    table = Table(title="asrctl plugins")
    for column in ("plugin", "version", "hooks", "provides"):
        table.add_column(column)
    for row in rows:
        provides = [
            f"{kind}: {', '.join(row[kind])}" for kind in ("backends", "formats", "trainers", "engines", "segmenters",
                                                         "exporters") if row[kind]
        ]
        provides += [f"{backend} -O: {', '.join(options)}" for backend, options in row["backend_options"].items()]
        provides += [f"{backend} languages: {described}" for backend, languages in row["backend_languages"].items()
                     if (described := describe_languages(languages))]
        provides += [f"{engine} -E: {', '.join(options)}" for engine, options in row["engine_options"].items()]
        provides += [f"{name} -V: {', '.join(options)}" for name, options in row["segmenter_options"].items()]
        provides += [f"{name} settings: {len(settings)}" for name, settings in row["trainer_settings"].items()]
        if row["error"]:
            provides = [f"[red]failed: {escape(row['error'])}[/red]"]
        # built-ins by their module's last part: the shared prefix would be all a narrow column shows
        name = f"{row['name'].rpartition('.')[2]} (built-in)" if row["builtin"] else row["name"]
        table.add_row(name, row["version"] or "", "\n".join(row["hooks"]) or "-", "\n".join(provides) or "-")
    console.print(table)
    for row in rows:
        listings = [
            *((f"{name} options (asrctl infer -b {name} -O KEY=VALUE)", options)
              for name, options in row["backend_options"].items()),
            *((f"{name} options (asrctl infer --engine {name} -E KEY=VALUE)", options)
              for name, options in row["engine_options"].items()),
            *((f"{name} options (asrctl infer --segment vad --vad {name} -V KEY=VALUE)", options)
              for name, options in row["segmenter_options"].items()),
            *((f"{name} trainer's own settings (asrctl finetune --set KEY=VALUE, or in a recipe)", settings)
              for name, settings in row["trainer_settings"].items()),
        ]
        for title, options in listings:
            listing = Table.grid(padding=(0, 2))
            for key, help_text in options.items():
                listing.add_row(f"  {key}", escape(help_text))
            console.print(f"\n{title}:", listing)
