"""`asrctl install` and `asrctl uninstall`: pip for the interpreter asrctl runs in, plugin-aware.

After an install, plugin discovery runs again in a fresh process (this one has already loaded its
plugins) and the new plugin's `asrctl plugins` row is shown, so a plugin that fails to load is
seen at once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import click

from asrctl.errors import AsrctlError
from asrctl.plugins import ENTRY_POINT_GROUP, normalize_name

# A requirement's distribution name, as in "asrctl-foo>=1.2" or "asrctl_foo[gpu]".
_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def pip(*args: str) -> None:
    """Run pip for this interpreter, its output going straight to the terminal."""
    if importlib.util.find_spec("pip") is None:
        raise AsrctlError(f"pip is not installed for {sys.executable} (add it with: {sys.executable} -m ensurepip)")
    code = subprocess.run([sys.executable, "-m", "pip", *args]).returncode
    if code:
        raise AsrctlError(f"pip {args[0]} failed (exit code {code}); pip's messages above say why")


def plugin_rows(names: set[str]) -> list[dict]:
    """`asrctl plugins --json` rows of the named distributions, from a fresh process."""
    env = {k: v for k, v in os.environ.items() if k != "ASRCTL_DISABLE_PLUGINS"}
    env["ASRCTL_LOAD_PLUGINS"] = ",".join(sorted(names))
    result = subprocess.run([sys.executable, "-m", "asrctl", "plugins", "--json"],
                            env=env, capture_output=True, text=True)
    sys.stderr.write(result.stderr)  # a plugin that fails to load says so there
    if result.returncode:
        last_line = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise AsrctlError(f"`asrctl plugins` failed after the install: {last_line}")
    return json.loads(result.stdout)


@click.command("install")
@click.argument("target", metavar="NAME|PATH")
@click.option("-e", "--editable", is_flag=True, help="Install a local folder in editable mode (for plugin authors).")
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade it to the newest version (dependencies as pip decides).")
def install_command(target: str, editable: bool, upgrade: bool) -> None:
    """Install a plugin into the environment asrctl runs in, and show what it registers.

    NAME is a package on the index, in pip's requirement syntax if you like
    ("asrctl-foo>=1.2"); PATH is a local folder with a pyproject.toml. This runs
    `python -m pip install` for the interpreter running asrctl, so the plugin lands where
    asrctl will find it.

    \b
    Examples:
      asrctl install asrctl-foo
      asrctl install ./plugins/asrctl-faster-whisper
      asrctl install -e .            # a plugin you are writing: edits apply without reinstalling
    """
    from asrctl.commands.plugins import print_table

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        pip("install", "--report", str(report), *(["--upgrade"] if upgrade else []),
            *(["--editable"] if editable else []), target)
        installed = json.loads(report.read_text())["install"]  # what pip (re)installed, dependencies too
    names = {normalize_name(item["metadata"]["name"]) for item in installed}
    # The distribution asked for: pip reports it when it installs it; one already there, by the name given.
    requested = [normalize_name(item["metadata"]["name"]) for item in installed if item.get("requested")]
    named = _REQUIREMENT_NAME.match(target)
    if not requested and named and not Path(target).exists():
        requested = [normalize_name(named.group())]
    rows = plugin_rows(names | set(requested))
    if not rows:
        what = requested[0] if requested else target
        raise AsrctlError(f"{what} is installed, but it is not an asrctl plugin (no {ENTRY_POINT_GROUP!r} "
                          f"entry point); remove it with: pip uninstall {what}")
    print_table(rows)


@click.command("uninstall")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def uninstall_command(name: str, yes: bool) -> None:
    """Uninstall the plugin distribution NAME (as `asrctl plugins` lists it) with pip.

    Only asrctl plugins are removed this way; asrctl itself and other packages are pip's business.
    """
    if normalize_name(name) == "asrctl":
        raise AsrctlError("asrctl will not uninstall itself; use pip uninstall asrctl")
    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise AsrctlError(f"{name} is not installed (installed plugins: asrctl plugins)") from None
    if not distribution.entry_points.select(group=ENTRY_POINT_GROUP):
        raise AsrctlError(f"{name} is not an asrctl plugin (no {ENTRY_POINT_GROUP!r} entry point); "
                          "use pip to remove it")
    if not yes and not sys.stdin.isatty():
        raise AsrctlError(f"uninstall {name} asks for confirmation, and there is no terminal to answer: pass -y")
    pip("uninstall", *(["--yes"] if yes else []), name)
