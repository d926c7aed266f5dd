"""Tests of the docs: run the Python blocks of a page in docs/ (docs/extending.md,
docs/integrations.md), each as a module of its own so that classes defined there pickle by
name; load a script of scripts/ that writes a page (cli_doc.py, readme_samples.py)."""
from __future__ import annotations

import importlib.util
import re
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def doc_script(name: str) -> types.ModuleType:
    """``scripts/NAME.py`` loaded as a module (scripts/ is no package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def python_blocks(doc: Path) -> list[str]:
    """The code of each fenced ```python block of ``doc``, in page order."""
    return re.findall(r"```python\n(.*?)```", doc.read_text(), re.S)


@contextmanager
def run_blocks(doc: Path, prefix: str, containing: str | None = None) -> Iterator[dict[str, Any]]:
    """Run the Python blocks of ``doc`` (only those whose code holds ``containing``, when
    given) as modules ``{prefix}_{i}``; yields the names they defined, the later blocks' last."""
    found: dict[str, Any] = {}
    names = []
    try:
        for i, code in enumerate(python_blocks(doc)):
            if containing is not None and containing not in code:
                continue
            module = types.ModuleType(f"{prefix}_{i}")
            sys.modules[module.__name__] = module
            names.append(module.__name__)
            exec(compile(code, f"{doc.name} block {i + 1}", "exec"), module.__dict__)
            found.update(module.__dict__)
        assert names, f"{doc.name} has no Python block" + (f" with {containing!r}" if containing else "")
        yield found
    finally:
        for name in names:
            sys.modules.pop(name, None)
