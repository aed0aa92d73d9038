"""Names used across modules are public: no module imports another module's ``_private`` name.

A leading underscore says "only this module relies on it", so its owner may rename or change it freely;
a second module that reaches for it breaks that promise silently. The checker reads every ``.py`` file
of the package and script folders (``distill_core``, ``envs``, ``agents``, ``scripts``, recursively) and
reports, as ``file:line: name``,

* ``from x import _y`` (relative imports too, at any depth, function bodies and ``if TYPE_CHECKING:``
  included) where ``x`` is one of the project's modules;
* ``alias._y`` where ``alias`` is bound in that file to one of the project's modules, by ``import a.b``,
  ``import a.b as alias`` or ``from a import b`` (``b`` a submodule); ``a.b._y`` after ``import a.b``
  counts too.

Dunder names (``__version__``, ``__all__``) are public. Third-party modules (``torch``, ``numpy``, the
standard library) are not the project's to rename and are not checked. Tests are outside the checked
folders on purpose: a module's tests may test its private helpers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("distill_core", "envs", "agents", "scripts")


@dataclass(frozen=True, order=True)
class Violation:
    """One use of another module's private name."""

    file: str
    line: int
    name: str
    source: str  # the module the name belongs to

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.name} (private to {self.source})"


def is_private(name: str) -> bool:
    """A single-underscore name: ``_x``, not ``__x__``."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_name(path: Path, root: Path) -> str:
    """The dotted module name of ``path`` under ``root`` (a package is its ``__init__.py``)."""
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def module_files(root: Path, folders: Iterable[str]) -> dict[str, Path]:
    """Every module under ``root``'s ``folders``, dotted name → file."""
    return {module_name(path, root): path
            for folder in folders for path in sorted((root / folder).rglob("*.py"))}


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a ``from … import`` statement in ``module`` imports from."""
    if not node.level:
        return node.module or ""
    package_parts = (module if is_package else module.rpartition(".")[0]).split(".")
    keep = len(package_parts) - (node.level - 1)
    if keep <= 0:
        raise ValueError(f"{module}: relative import beyond the top-level package")
    base = ".".join(package_parts[:keep])
    return f"{base}.{node.module}" if node.module else base


def _attribute_chain(node: ast.Attribute) -> tuple[str, list[str]] | None:
    """``a.b.c`` → ``("a", ["b", "c"])``; ``None`` when the chain does not start at a plain name."""
    attrs: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        attrs.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    return current.id, attrs[::-1]


def private_uses(source: str, module: str, *, is_package: bool = False, file: str = "<string>",
                 first_party: Iterable[str] = FOLDERS,
                 known_modules: Iterable[str] | Mapping[str, object] = ()) -> list[Violation]:
    """The places where ``source`` (the text of ``module``) uses a private name of another module.

    :param source: the module's source text.
    :param module: its dotted name (relative imports resolve against it).
    :param is_package: whether it is a package's ``__init__.py``.
    :param file: the file name the violations carry.
    :param first_party: top-level package names whose modules count; anything else is third-party.
    :param known_modules: the project's dotted module names; ``from a import b`` binds a module only
        when ``a.b`` is among them.
    """
    top_level = set(first_party)
    known = set(known_modules)

    def ours(name: str) -> bool:
        return name.split(".")[0] in top_level

    found: list[Violation] = []
    modules: dict[str, str] = {}  # local name bound to a module of the project → that module
    tree = ast.parse(source, filename=file)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not ours(alias.name):
                    continue
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:  # `import a.b.c` binds `a`
                    head = alias.name.split(".")[0]
                    modules[head] = head
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, is_package)
            if not (node.level or ours(base)):
                continue
            for alias in node.names:
                if alias.name == "*":
                    continue
                if is_private(alias.name) and base != module:
                    found.append(Violation(file, getattr(alias, "lineno", node.lineno), alias.name, base))
                submodule = f"{base}.{alias.name}"
                if submodule in known:
                    modules[alias.asname or alias.name] = submodule

    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and is_private(node.attr)):
            continue
        chain = _attribute_chain(node)
        if chain is None or chain[0] not in modules:
            continue
        root, attrs = chain
        if any(is_private(a) for a in attrs[:-1]):
            continue  # reported once, at the first private link
        owner = ".".join([modules[root], *attrs[:-1]])
        if owner != module:
            found.append(Violation(file, node.lineno, node.attr, owner))
    return sorted(set(found))


def project_violations(root: Path = ROOT, folders: Iterable[str] = FOLDERS) -> list[Violation]:
    """Every private name used across modules in ``root``'s ``folders``."""
    files = module_files(root, folders)
    found: list[Violation] = []
    for name, path in files.items():
        found += private_uses(path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py",
                              file=str(path.relative_to(root)), first_party=folders, known_modules=files)
    return sorted(found)


# ---------------------------------------------------------------------- the checker checks itself
KNOWN = {"pkg", "pkg.sub", "pkg.sub.unroll", "pkg.other"}


def uses(source: str, module: str = "pkg.sub.mod", **kwargs) -> list[tuple[int, str]]:
    found = private_uses(source, module, first_party=("pkg",), known_modules=KNOWN, **kwargs)
    return [(v.line, v.name) for v in found]


def test_checker_reports_a_hand_written_violation():
    source = ("from pkg.sub.unroll import _build_net, softplus_inverse\n"
              "x = _build_net()\n")
    found = private_uses(source, "pkg.sub.dd", file="pkg/sub/dd.py", first_party=("pkg",), known_modules=KNOWN)
    assert [str(v) for v in found] == ["pkg/sub/dd.py:1: _build_net (private to pkg.sub.unroll)"]


def test_checker_finds_every_kind_of_private_use():
    assert uses("from pkg.other import (\n    a,\n    _b,\n)\n") == [(3, "_b")]
    assert uses("from ..other import _b\n") == [(1, "_b")]  # relative, resolves to pkg.other
    assert uses("from . import _helper\n") == [(1, "_helper")]  # pkg.sub's private name
    assert uses("def f():\n    from pkg.other import _b\n") == [(2, "_b")]  # lazy import
    assert uses("import pkg.sub.unroll as unroll\nunroll._build_net()\n") == [(2, "_build_net")]
    assert uses("from pkg.sub import unroll\nunroll._params_of(x)\n") == [(2, "_params_of")]
    assert uses("import pkg.sub.unroll\npkg.sub.unroll._build_net\n") == [(2, "_build_net")]
    assert uses("import pkg.other as o\no._a._b\n") == [(2, "_a")]  # reported once, at the first link


def test_checker_lets_public_dunder_own_and_third_party_names_pass():
    assert uses("from pkg.other import a, b as _b, __version__\nfrom pkg import __all__\n") == []
    assert uses("import pkg.other as o\no.__doc__, o.public\n") == []
    assert uses("from typing import _GenericAlias\nimport sys\nsys._getframe(1)\n") == []
    assert uses("import torch.nn as nn\nnn.modules.batchnorm._BatchNorm\n") == []
    assert uses("self._x\nobj._y\nfrom pkg.sub import mod\n") == []  # objects, not modules
    assert uses("from pkg.other import a\na._x\n") == []  # `a` is a name of pkg.other, not a module
    # a package's __init__ naming its own private attributes is not "another module"
    assert uses("from . import _x\n", module="pkg.sub", is_package=True) == []


def test_no_module_uses_another_modules_private_name():
    found = project_violations()
    assert not found, "private names used across modules:\n" + "\n".join(map(str, found))


#: a file of agents/ holds one idea; past this many lines it holds several
MAX_AGENTS_FILE_LINES = 400


def test_no_file_in_agents_is_over_the_limit():
    root = Path(__file__).resolve().parent.parent / "agents"
    long = {str(p.relative_to(root.parent)): n for p in sorted(root.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_AGENTS_FILE_LINES}
    assert not long, f"files of agents/ over {MAX_AGENTS_FILE_LINES} lines (split them by idea): {long}"
