"""The house holds to its map (docs/architecture.md): each room imports only the rooms the map lets it,
no package has an import circle (imports inside functions included), and the map names every module."""

import ast
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
MAP = ROOT / "docs" / "architecture.md"
PACKAGES = [ROOT / "asrctl", *sorted(ROOT.glob("plugins/*/asrctl_*")), *sorted(ROOT.glob("docs/examples/*/asrctl_*"))]


def modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of a package folder."""
    found = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Each module of `package` -> the modules of the same package it imports, wherever in the file the
    import stands (at the top, inside a function, under `if TYPE_CHECKING`)."""
    found = modules(package)
    top = package.name

    def owner(name: str) -> str:  # the module a dotted name belongs to (a name defined in it, or itself)
        while name not in found:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in found.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {owner(a.name) for a in node.names if a.name.split(".")[0] == top}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == top:
                targets |= {owner(f"{node.module}.{a.name}") for a in node.names}
        graph[name] = targets - {name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of a graph: its strongly connected parts of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            part = []
            while not part or part[-1] != node:
                part.append(stack.pop())
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def rooms() -> dict[str, tuple[list[str], set[str]]]:
    """The map's table: room -> (where it is, as paths and folders; the rooms it may import)."""
    table = {}
    for line in MAP.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("room", "---"):
            table[cells[0]] = (re.findall(r"`([^`]+)`", cells[1]), {r.strip() for r in cells[3].split(",")})
    return table


def room_of(module: str, table: dict[str, tuple[list[str], set[str]]]) -> str:
    """The room a module of asrctl lives in: the one naming its file, else its folder, else `asrctl/*.py`."""
    path = modules(ROOT / "asrctl")[module].relative_to(ROOT).as_posix()
    for match in (lambda where: where == path, lambda where: where.endswith("/") and path.startswith(where),
                  lambda where: where == "asrctl/*.py" and path.count("/") == 1):
        named = [room for room, (places, _) in table.items() if any(match(place) for place in places)]
        if named:
            return named[0]
    raise AssertionError(f"{path} is in no room of {MAP.name}")


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_no_package_imports_itself_in_a_circle(package):
    assert circles(import_graph(package)) == []


def test_a_circle_through_a_lazy_import_is_found(tmp_path):
    package = tmp_path / "house"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text(textwrap.dedent("""
        def sniff():
            from house.high import formats  # reaches up, at call time
            return formats()
    """))
    (package / "high.py").write_text("from house.low import sniff\n\ndef formats():\n    return []\n")
    (package / "apart.py").write_text("import house.low\n")
    assert circles(import_graph(package)) == [["house.high", "house.low"]]


def test_each_room_imports_only_what_the_map_lets_it():
    table = rooms()
    assert {"base", "data", "infer", "train", "score", "commands", "api"} <= set(table)
    graph = import_graph(ROOT / "asrctl")
    trespass = sorted(f"{module} ({room_of(module, table)}) imports {other} ({room_of(other, table)})"
                      for module, targets in graph.items() for other in targets
                      if room_of(other, table) not in {room_of(module, table), *table[room_of(module, table)][1]})
    assert trespass == []


def test_the_map_names_every_module_and_no_other():
    listed = set()
    folder = None
    for line in MAP.read_text().splitlines():
        if re.fullmatch(r"`asrctl/[\w/]*`", line):
            folder = line.strip("`")
        elif folder and (name := re.match(r"- `(\w+\.py)`", line)):
            listed.add(folder + name.group(1))
    present = {path.relative_to(ROOT).as_posix() for path in (ROOT / "asrctl").rglob("*.py")}
    assert listed == present
    assert len([p for p in present if p.count("/") == 1]) <= 16  # the top level stays small
