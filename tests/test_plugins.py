"""Plugin discovery through real entry points, isolation of broken plugins, allow/deny lists."""

import json

import pytest

from asrctl.registry import Registry, UnknownNameError
from asrctl.specs import BackendSpec
from asrctl.testing import make_plugin_dist, run_cli

BROKEN = "raise ImportError('boom: a dependency is missing')\n"

GOOD = """
import click
from asrctl import BackendSpec, hookimpl

def load(model, device, dtype, **opts):
    raise NotImplementedError

@hookimpl
def register_backends(register):
    register(BackendSpec(name="toy-ctc", load=load, description="toy"))

@hookimpl
def register_commands(cli):
    @cli.command()
    def hello():
        click.echo("hello from a plugin")
"""

RAISES_IN_HOOK = """
from asrctl import hookimpl

@hookimpl
def register_backends(register):
    raise RuntimeError("registry exploded")
"""


def plugins_json(**kwargs) -> dict:
    result = run_cli("plugins", "--json", **kwargs)
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_installed_plugins_are_listed_with_their_hooks():
    rows = plugins_json()
    assert {"asrctl-hf", "asrctl-nemo"} <= set(rows)
    for name in ("asrctl-hf", "asrctl-nemo"):
        assert rows[name]["version"]
        assert isinstance(rows[name]["hooks"], list)
        assert rows[name]["error"] is None


def test_builtin_plugins_only_with_all():
    assert not any(row["builtin"] for row in plugins_json().values())
    result = run_cli("plugins", "--json", "--all")
    builtin = [row for row in json.loads(result.stdout) if row["builtin"]]
    assert any("nemo" in row["formats"] for row in builtin)


def test_plugin_from_entry_point_registers_backend_and_command(tmp_path):
    site = make_plugin_dist(tmp_path, "asrctl-toy", GOOD)
    rows = plugins_json(pythonpath=site)
    assert rows["asrctl-toy"]["backends"] == ["toy-ctc"]
    assert rows["asrctl-toy"]["hooks"] == ["register_backends", "register_commands"]
    hello = run_cli("hello", pythonpath=site)
    assert hello.returncode == 0 and "hello from a plugin" in hello.stdout


def test_broken_plugin_is_reported_and_others_still_work(tmp_path):
    site = make_plugin_dist(tmp_path, "asrctl-broken", BROKEN)
    result = run_cli("plugins", "--json", pythonpath=site)
    assert result.returncode == 0
    assert "asrctl-broken" in result.stderr and "boom: a dependency is missing" in result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert "ImportError" in rows["asrctl-broken"]["error"]
    assert rows["asrctl-hf"]["error"] is None
    table = run_cli("plugins", pythonpath=site)
    assert table.returncode == 0 and "asrctl-hf" in table.stdout
    assert run_cli("--help", pythonpath=site).returncode == 0


def test_strict_mode_makes_a_broken_plugin_fatal(tmp_path):
    site = make_plugin_dist(tmp_path, "asrctl-broken", BROKEN)
    result = run_cli("plugins", env={"ASRCTL_STRICT_PLUGINS": "1"}, pythonpath=site)
    assert result.returncode == 1
    assert "asrctl-broken" in result.stderr and "Traceback" not in result.stderr


def test_hook_that_raises_is_isolated(tmp_path):
    site = make_plugin_dist(tmp_path, "asrctl-explodes", RAISES_IN_HOOK)
    make_plugin_dist(tmp_path, "asrctl-toy", GOOD)
    result = run_cli("plugins", "--json", pythonpath=site)
    assert result.returncode == 0
    assert "asrctl-explodes" in result.stderr and "registry exploded" in result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["asrctl-toy"]["backends"] == ["toy-ctc"]


def test_allow_list_empty_hides_external_plugins(tmp_path):
    site = make_plugin_dist(tmp_path, "asrctl-broken", BROKEN)
    result = run_cli("plugins", "--json", env={"ASRCTL_LOAD_PLUGINS": ""}, pythonpath=site)
    assert json.loads(result.stdout) == []
    assert "asrctl-broken" not in result.stderr


def test_allow_list_names_what_loads():
    assert set(plugins_json(env={"ASRCTL_LOAD_PLUGINS": "asrctl-hf"})) == {"asrctl-hf"}


def test_deny_list_hides_one(tmp_path):
    rows = plugins_json(env={"ASRCTL_DISABLE_PLUGINS": "asrctl-nemo"})
    assert "asrctl-nemo" not in rows and "asrctl-hf" in rows
    site = make_plugin_dist(tmp_path, "asrctl-broken", BROKEN)
    result = run_cli("plugins", env={"ASRCTL_DISABLE_PLUGINS": "asrctl_broken"}, pythonpath=site)
    assert result.returncode == 0 and "asrctl-broken" not in result.stderr


def test_unknown_name_lists_known_names_and_suggests():
    registry = Registry("backend")
    for name in ("hf-ctc", "hf-whisper", "nemo"):
        registry.add(BackendSpec(name=name, load=print), plugin="p")
    with pytest.raises(UnknownNameError) as err:
        registry.get("hf-whsiper")
    message = str(err.value)
    assert "did you mean 'hf-whisper'" in message
    assert "known backends: hf-ctc, hf-whisper, nemo" in message
    assert "\n" not in message


def test_same_name_from_two_plugins_is_refused():
    registry = Registry("format")
    registry.add(BackendSpec(name="x", load=print), plugin="a")
    with pytest.raises(Exception, match="registered by both a and b"):
        registry.add(BackendSpec(name="x", load=print), plugin="b")


def core_imports_outside_the_public_api(source: str) -> list[str]:
    """The imports of a module's source that reach into asrctl past `asrctl` and `asrctl.api`."""
    import ast

    import asrctl
    import asrctl.api

    public = {"asrctl": set(asrctl.__all__), "asrctl.api": set(asrctl.api.__all__)}
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("asrctl.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "asrctl":
            if node.module not in public:
                found.append(f"from {node.module} import ...")
            else:
                found += [f"{node.module}.{a.name}" for a in node.names if a.name not in public[node.module]]
    return found


def test_plugins_import_only_the_public_api():
    from pathlib import Path

    root = Path(__file__).parent.parent
    sources = [*root.glob("plugins/*/asrctl_*/**/*.py"), *root.glob("docs/examples/*/asrctl_*/**/*.py")]
    assert len(sources) > 20 and any("examples" in p.parts for p in sources)
    reaching = {str(p.relative_to(root)): bad for p in sources
                if (bad := core_imports_outside_the_public_api(p.read_text()))}
    assert reaching == {}


def test_the_import_check_finds_what_reaches_past_the_public_api():
    source = "import asrctl.data.audio\nfrom asrctl.data.rows import dumps\nfrom asrctl import hookimpl, Registry\n" \
             "from asrctl.api import load_audio, plan\nfrom asrctl_hf import common\n"
    assert core_imports_outside_the_public_api(source) == [
        "asrctl.data.audio", "from asrctl.data.rows import ...", "asrctl.Registry", "asrctl.api.plan"]
