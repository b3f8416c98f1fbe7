"""The package's layers, read from its imports (ast): recipes are leaves.

- Only the registry (recipes/__init__.py), api and importers/ import recipe modules.
- A recipe never imports another recipe; the family bases (FAMILY_BASES) are shared.
- engine, data, models, metrics, sampling, diffusion, tokenizers and outputs never import
  from recipes at all (not even the registry, not even under TYPE_CHECKING).
"""
from __future__ import annotations

import ast
from pathlib import Path

import genlab

PACKAGE_ROOT = Path(genlab.__file__).parent
FAMILY_BASES = {"genlab.recipes.base", "genlab.recipes.image_base", "genlab.recipes.lm_base"}
BELOW_RECIPES = ("engine", "data", "models", "metrics", "sampling", "diffusion", "tokenizers", "outputs")
MAY_IMPORT_RECIPES = ("genlab.recipes", "genlab.api", "genlab.importers")


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(root: Path, path: Path) -> set[str]:
    """Every genlab module `path` imports, anywhere in the file (functions, TYPE_CHECKING blocks)."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            for alias in node.names:  # `from .recipes import gpt` imports the module recipes.gpt
                sub = f"{target}.{alias.name}"
                rel = Path(*sub.split(".")[1:])
                if (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file():
                    out.add(sub)
    return {m for m in out if m == root.name or m.startswith(root.name + ".")}


def forbidden_edges(root: Path = PACKAGE_ROOT) -> list[str]:
    """'importer -> imported: rule' for every import that breaks the layers."""
    pkg = root.name
    recipes = f"{pkg}.recipes"
    bases = {b.replace("genlab", pkg, 1) for b in FAMILY_BASES}
    allowed_importers = tuple(m.replace("genlab", pkg, 1) for m in MAY_IMPORT_RECIPES)
    below = tuple(f"{pkg}.{p}" for p in BELOW_RECIPES)
    problems = []
    for path in sorted(root.rglob("*.py")):
        src = module_name(root, path)
        for dst in sorted(imported_modules(root, path)):
            if not (dst == recipes or dst.startswith(recipes + ".")):
                continue
            is_recipe_module = dst.startswith(recipes + ".")
            if src.startswith(below) and (src in below or src.startswith(tuple(b + "." for b in below))):
                problems.append(f"{src} -> {dst}: {src.split('.')[1]} must not import from recipes")
            elif src.startswith(recipes + ".") and src not in bases and is_recipe_module and dst not in bases:
                problems.append(f"{src} -> {dst}: a recipe must not import another recipe")
            elif src in bases and is_recipe_module and dst not in bases:
                problems.append(f"{src} -> {dst}: a family base must not import a recipe")
            elif (is_recipe_module and not src.startswith(recipes)
                  and not any(src == a or src.startswith(a + ".") for a in allowed_importers)):
                problems.append(f"{src} -> {dst}: only the registry, api and importers import recipe modules")
    return problems


def test_the_package_keeps_its_layers():
    assert forbidden_edges() == []


def test_the_check_sees_forbidden_imports(tmp_path):
    """A synthetic package with one edge of each forbidden kind (and some allowed ones)."""
    root = tmp_path / "pkg"
    files = {
        "__init__.py": "",
        "api.py": "from .recipes import get_recipe\nfrom .recipes.gpt import GPT\n",        # allowed
        "cli.py": "from . import api\nfrom .recipes import gpt\n",                          # forbidden
        "recipes/__init__.py": "import importlib\nfrom .base import Recipe\n",
        "recipes/base.py": "from ..engine import trainer\n",
        "recipes/lm_base.py": "from .base import Recipe\n",
        "recipes/gpt.py": "from .lm_base import LM\nfrom . import lstm_lm\n",               # forbidden
        "recipes/lstm_lm.py": "from .lm_base import LM\nfrom ..sampling import generate\n",
        "engine/__init__.py": "",
        "engine/trainer.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from ..recipes.base import Recipe\n"),                 # forbidden
        "sampling/__init__.py": "",
        "sampling/generate.py": "def f():\n    import pkg.recipes\n",                        # forbidden
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    edges = forbidden_edges(root)
    assert edges == [
        "pkg.cli -> pkg.recipes.gpt: only the registry, api and importers import recipe modules",
        "pkg.engine.trainer -> pkg.recipes.base: engine must not import from recipes",
        "pkg.recipes.gpt -> pkg.recipes.lstm_lm: a recipe must not import another recipe",
        "pkg.sampling.generate -> pkg.recipes: sampling must not import from recipes",
    ]
