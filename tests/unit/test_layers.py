"""The arrows point one way: webapp -> reviews -> workflow. Checked in a fresh interpreter by importing
every module of a package and looking at what got loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package, forbidden", [
    ("workflow", ("reviews", "webapp", "flask", "flask_wtf", "flask_login", "wtforms", "weasyprint")),
    ("reviews", ("webapp", "flask", "flask_wtf", "flask_login", "wtforms", "weasyprint")),
])
def test_package_imports_nothing_above_it(package, forbidden):
    code = (
        "import importlib, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for m in pkgutil.iter_modules(pkg.__path__):\n"
        f"    importlib.import_module({package!r} + '.' + m.name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r})\n"
        "print(' '.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"{package}/ loads {done.stdout.strip()}"
