"""The `asrctl` command group. Subcommands live in asrctl/commands/; plugins may add more."""

from __future__ import annotations

import sys

import click

from asrctl import __version__, interrupts
from asrctl.commands.align import align_command
from asrctl.commands.config import config_command
from asrctl.commands.eval import eval_command
from asrctl.commands.export import export_command
from asrctl.commands.finetune import finetune_command
from asrctl.commands.infer import infer_command
from asrctl.commands.install import install_command, uninstall_command
from asrctl.commands.manifest import manifest_group
from asrctl.commands.plugins import plugins_command
from asrctl.commands.serve import serve_command
from asrctl.errors import AsrctlError


class AsrctlGroup(click.Group):
    """Adds plugin commands on first use and turns user errors into one-line messages."""

    _plugin_commands_added = False

    def _add_plugin_commands(self) -> None:
        if self._plugin_commands_added:
            return
        self._plugin_commands_added = True
        from asrctl.plugins import get_plugins

        try:
            plugins = get_plugins()
            for impl in plugins.hookimpls("register_commands"):
                plugins.call_isolated(impl.plugin_name, impl.function, self)
        except AsrctlError as exc:  # only in strict mode: a broken plugin is fatal
            raise click.ClickException(str(exc)) from exc

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._add_plugin_commands()
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AsrctlError as exc:
            if ctx.params.get("debug"):
                raise
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:  # the machine's doing (a full disk, no permission): one line naming the file
            if ctx.params.get("debug") or not exc.filename:
                raise
            raise click.ClickException(f"{exc.filename}: {exc.strerror or exc}") from exc
        except KeyboardInterrupt as exc:  # click's own answer would be "Aborted!" and exit 1
            click.echo(str(exc) if isinstance(exc, interrupts.Interrupted) else "interrupted", err=True)
            sys.exit(130)


@click.group(cls=AsrctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="asrctl")
@click.option("--debug", is_flag=True, envvar="ASRCTL_DEBUG", help="Show full tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """Speech recognition from data to model to score, over every model family.

    \b
      asrctl manifest ...   build, check and convert audio manifests
      asrctl infer ...      transcribe audio files, folders or a manifest; text and subtitles out
      asrctl eval ...       WER/CER with normalisation and breakdowns
      asrctl finetune ...   full fine-tuning or LoRA from a recipe
      asrctl export ...     a model into another backend's format (Whisper for faster-whisper)
      asrctl align ...      the times of each word and sentence of a known text in its audio
      asrctl serve          a model behind the OpenAI transcription API, requests batched together
      asrctl plugins        what is installed
      asrctl config         the default backend and model (faster-whisper, Whisper base)
      asrctl install ...    add a plugin (pip for this interpreter); uninstall removes one

    Exit codes: 0 success, 1 error, 2 usage error, 3 finished but some rows failed,
    4 eval above --fail-above, 130 interrupted.
    """


for command in (infer_command, eval_command, finetune_command, export_command, manifest_group, plugins_command,
                install_command, uninstall_command, config_command, serve_command, align_command):
    cli.add_command(command)


def main() -> None:
    interrupts.install()
    cli(prog_name="asrctl")
