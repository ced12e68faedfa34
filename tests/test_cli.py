"""The command-line surface: help, entry point, start-up weight, one-line errors."""

import shutil
import subprocess
import sys

from asrctl.testing import run_cli

HEAVY = ("torch", "transformers", "nemo", "peft", "av", "soxr", "jiwer", "ray")

PROBE = """
import sys
from click.testing import CliRunner
from asrctl.cli import cli
for args in {args!r}:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
print(",".join(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("manifest", "plugins"):
        assert f"  {command} " in result.stdout


def test_console_script_is_installed():
    exe = shutil.which("asrctl") or shutil.which("asrctl", path=str(__import__("pathlib").Path(sys.executable).parent))
    assert exe, "the asrctl console script is not on PATH"
    result = subprocess.run([exe, "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "asrctl" in result.stdout


def test_startup_imports_no_heavy_library():
    args = [["--help"], ["plugins"], ["plugins", "--json"], ["manifest", "--help"]]
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at start-up: {out.stdout.strip()}"


def test_user_error_is_one_line_without_traceback(tmp_path):
    result = run_cli("no-such-command")
    assert result.returncode == 2 and "No such command" in result.stderr
