"""The docs cannot drift from the code: generated CLI help is current, every hook is documented."""

import subprocess
import sys
from pathlib import Path

import pytest

from asrctl.testing import hookspec_names, hookspec_signature

ROOT = Path(__file__).parents[1]
GUIDE = ROOT / "docs" / "plugins.md"


def cog_check(*files: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("cogapp", reason="cogapp is in the test extra: pip install -e '.[test]'")
    return subprocess.run([sys.executable, "-m", "cogapp", "--check", "--diff", *map(str, files)],
                          cwd=ROOT, capture_output=True, text=True)


def test_generated_help_in_the_docs_is_current():
    result = cog_check(*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md")
    assert result.returncode == 0, f"run: cog -r docs/*.md README.md\n{result.stdout}{result.stderr}"


def test_stale_help_is_caught(tmp_path):
    stale = tmp_path / "plugins.md"
    stale.write_text(GUIDE.read_text().replace("Do not ask for confirmation.", "Ask nothing."))
    assert cog_check(stale).returncode != 0


def test_every_hookspec_is_documented_with_its_signature():
    guide = GUIDE.read_text()
    names = hookspec_names()
    assert "register_backends" in names and len(names) >= 5
    for name in names:
        assert f"\n### {name}\n" in guide, f"docs/plugins.md has no section for the {name} hook"
        assert hookspec_signature(name) in guide, f"docs/plugins.md lacks the signature of {name}: run cog -r"


def test_every_public_name_says_what_it_is():
    from asrctl.testing import public_api_table

    rows = public_api_table().splitlines()[2:]
    assert len(rows) > 30
    assert [row for row in rows if row.endswith("|  |")] == []
