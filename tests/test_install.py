"""`asrctl install` and `asrctl uninstall`: real pip installs of plugin projects, into a throwaway
environment layered over this one (this environment is never changed), without the network."""

import json
import sys
import textwrap

import pytest
from click.testing import CliRunner

from asrctl.cli import cli
from asrctl.testing import make_manifest, overlay_venv, run_cli

# No index; build isolation off ("0" means off in pip's reading of this variable), so setuptools
# comes from this environment instead of being downloaded.
OFFLINE = {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0"}

ECHO = """
from asrctl import BackendSpec, hookimpl

def load(model, **options):
    raise NotImplementedError

@hookimpl
def register_backends(register):
    register(BackendSpec(name="{backend}", load=load, extra_options={{"shout": "true: upper case"}}))
"""


def write_project(folder, name, code, entry_point=True):
    """A plugin project as an author writes one: pyproject.toml and one module."""
    module = name.replace("-", "_")
    folder.mkdir()
    group = f'[project.entry-points.asrctl]\n{module} = "{module}"\n' if entry_point else ""
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "0.2"

        [tool.setuptools]
        py-modules = ["{module}"]
        """) + group)
    (folder / f"{module}.py").write_text(code)
    return folder


@pytest.fixture
def venv(tmp_path):
    return overlay_venv(tmp_path / "venv")


def plugins_json(python=sys.executable):
    result = run_cli("plugins", "--json", python=python)
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_install_shows_the_plugin_and_uninstall_removes_it(tmp_path, venv):
    project = write_project(tmp_path / "asrctl-echo", "asrctl-echo", ECHO.format(backend="echo"))
    result = run_cli("install", str(project), python=venv, env=OFFLINE)
    assert result.returncode == 0, result.stderr
    table = result.stdout[result.stdout.index("asrctl plugins"):]  # pip's own output comes first
    assert "asrctl-echo" in table and "backends: echo" in table and "shout" in table
    assert "asrctl-hf" not in table  # only what this install added
    assert plugins_json(venv)["asrctl-echo"]["backends"] == ["echo"]
    assert "asrctl-echo" not in plugins_json()  # this environment is untouched

    removed = run_cli("uninstall", "asrctl-echo", "-y", python=venv)
    assert removed.returncode == 0, removed.stderr
    assert "asrctl-echo" not in plugins_json(venv)
    manifest, _ = make_manifest(tmp_path / "data", [1.0])
    infer = run_cli("infer", str(manifest), "-b", "echo", "-m", "x", python=venv)
    assert infer.returncode == 1
    [line] = infer.stderr.strip().splitlines()
    assert "unknown backend 'echo'" in line and "; known backends: " in line


def test_editable_install_follows_the_authors_edits(tmp_path, venv):
    project = write_project(tmp_path / "asrctl-draft", "asrctl-draft", ECHO.format(backend="draft-1"))
    result = run_cli("install", "-e", str(project), python=venv, env=OFFLINE)
    assert result.returncode == 0, result.stderr
    (project / "asrctl_draft.py").write_text(ECHO.format(backend="draft-2"))
    assert plugins_json(venv)["asrctl-draft"]["backends"] == ["draft-2"]


def test_a_package_that_is_not_a_plugin_is_reported(tmp_path, venv):
    project = write_project(tmp_path / "plain-lib", "plain-lib", "VALUE = 1\n", entry_point=False)
    result = run_cli("install", str(project), python=venv, env=OFFLINE)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: plain-lib is installed, but it is not an asrctl plugin (no 'asrctl' entry point); "
        "remove it with: pip uninstall plain-lib")


def test_a_failed_pip_run_ends_in_one_line(tmp_path):
    result = run_cli("install", str(tmp_path / "no-such-folder"), env=OFFLINE)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: pip install failed (exit code 1)")


@pytest.mark.parametrize(("name", "message"), [
    ("asrctl", "asrctl will not uninstall itself; use pip uninstall asrctl"),
    ("PyYAML", "PyYAML is not an asrctl plugin (no 'asrctl' entry point); use pip to remove it"),
    ("no-such-dist", "no-such-dist is not installed (installed plugins: asrctl plugins)"),
])
def test_uninstall_refuses_what_is_not_an_installed_plugin(name, message):
    result = CliRunner().invoke(cli, ["uninstall", name, "-y"])
    assert result.exit_code == 1 and result.output == f"Error: {message}\n"
