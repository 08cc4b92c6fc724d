"""The exact command that installs an optional extra into *this* installation.

An operator who configured ``store.url: postgresql://…`` without psycopg should get a
command they can paste, for the environment monitor actually runs in: a checkout installed
with ``pip install -e`` (as ``make run`` does) gets ``.venv/bin/pip install -e '.[postgres]'``
relative to the working directory; an ordinary install gets ``pip install 'monitor[…]'``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import monitor


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies under it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if rel.startswith("..") else rel


def install_hint(extra: str) -> str:
    checkout = Path(monitor.__file__).resolve().parents[1]
    pip = Path(sys.prefix) / "bin" / "pip"
    pip_cmd = _shown(pip) if pip.exists() else f"{sys.executable} -m pip"
    if (checkout / "pyproject.toml").exists():
        return f"{pip_cmd} install -e '{_shown(checkout)}[{extra}]'"
    return f"{pip_cmd} install 'monitor[{extra}]'"
