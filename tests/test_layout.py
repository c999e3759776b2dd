"""The shape of the code: who may import whom, and what the wheel installs."""

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
assert (ROOT / "pyproject.toml").is_file(), ROOT

# the part each module belongs to, by path prefix (the longest prefix wins)
PARTS = {"ozfig": "core", "ozfig/eval": "eval", "server": "server", "convert": "convert"}
# what each part may import besides itself and the standard library / third parties
ALLOWED = {
    "core": {"core"},
    "eval": {"core", "eval"},
    "server": {"core", "server"},
    "convert": {"core", "convert"},
}
# the one module that imports upward: it registers every command
UPWARD = {"ozfig/cli.py"}


def part_of(module_path: str) -> str | None:
    best = None
    for prefix, part in PARTS.items():
        if (module_path == prefix or module_path.startswith(prefix + "/")) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, part)
    return best[1] if best else None


def imported_modules(source: str, package: str) -> set[str]:
    """Every module `source` (a module of `package`) imports, anywhere in it, functions included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def source_files() -> list[Path]:
    return sorted(p for top in ("ozfig", "server", "convert") for p in (ROOT / top).rglob("*.py"))


def test_parts_import_only_the_core_and_themselves() -> None:
    wrong = []
    for path in source_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in UPWARD:
            continue
        mine = part_of(rel)
        assert mine is not None
        package = ".".join(path.relative_to(ROOT).parts[:-1])
        for name in imported_modules(path.read_text(encoding="utf-8"), package):
            other = part_of(name.replace(".", "/"))
            if other is not None and other not in ALLOWED[mine]:
                wrong.append(f"{rel} ({mine}) imports {name} ({other})")
    assert not wrong, "\n".join(sorted(set(wrong)))


def test_only_the_binding_imports_llama_cpp() -> None:
    """ozfig/llama/ is the one llama.cpp binding: no other module of ozfig, server or convert imports it."""
    wrong = []
    for path in source_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("ozfig/llama/"):
            continue
        package = ".".join(path.relative_to(ROOT).parts[:-1])
        names = imported_modules(path.read_text(encoding="utf-8"), package)
        if any(n == "llama_cpp" or n.startswith("llama_cpp.") for n in names):
            wrong.append(rel)
    assert not wrong, f"import llama_cpp outside ozfig/llama/: {wrong}"
    assert "llama_cpp" in imported_modules((ROOT / "ozfig/llama/context.py").read_text(), "ozfig.llama")


def test_the_check_sees_lazy_and_relative_imports() -> None:
    source = "def f():\n    from server.settings import Settings\n    from ..engine import stops\n"
    assert imported_modules(source, "ozfig.eval") >= {"server.settings", "ozfig.engine", "ozfig.engine.stops"}
    assert part_of("server/settings") == "server"
    assert part_of("ozfig/eval/cli") == "eval"
    assert part_of("ozfig/engine/stops") == "core"
    assert part_of("numpy") is None


MAX_LINES = 300  # the project's rule: small modules with one job each


def test_no_source_module_is_over_300_lines() -> None:
    long = {}
    for path in source_files():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            long[path.relative_to(ROOT).as_posix()] = n
    assert source_files() and not long, f"over {MAX_LINES} lines (split by job): {long}"


@pytest.mark.slow
def test_wheel_installs_exactly_ozfig_server_convert(tmp_path: Path) -> None:
    """Build the wheel from a copy of the tree (no compile: setuptools only) and list its top level."""
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        # the tree, less git data, virtual environments, caches, build outputs and models
        ignore=shutil.ignore_patterns(".*", "*venv*", "__pycache__", "build", "dist", "*.egg-info", "*.gguf"),
    )
    out = tmp_path / "wheel"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("ozfig-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        top = {name.split("/")[0] for name in zf.namelist() if not name.split("/")[0].endswith(".dist-info")}
        names = zf.namelist()
    assert top == {"ozfig", "server", "convert"}
    assert "server/static/index.html" in names
    assert "ozfig/eval/cli.py" in names and "ozfig/llama/model.py" in names
