"""The matching engine compiled to C with mypyc, used only while it matches its sources.

The engine is plain, fully typed Python (``mypy --strict``). mypyc turns the modules on
the matching path into C extensions without a change of code: on the real-text
benchmark's data, 1.4-1.55x the articles per second on words seen for the first time and
1.3-1.55x on words seen before, at 1,000 to 50,000 terms (``bench/native.py``, which
alternates processes of both engines and checks that their matches are identical).

The extensions are built out of the source tree, into ``build/engine/`` of the checkout
(``python -m monitor.engine.build``; ``make run`` and ``make test`` do it), beside a
digest of the sources they were built from. ``monitor/engine/__init__.py`` puts that folder
first on the package's path only while the digest still matches the sources and this
interpreter: an engine file edited after the build, a new Python, or no C compiler on the
machine all leave the pure-Python engine in use, never a stale one. ``MONITOR_ENGINE=python``
asks for the pure-Python engine whatever was built.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

# The modules every item's matching runs through; the rest of the engine (watchlist
# loading, explanations, word tables built once) gains nothing from compiling.
COMPILED = ("normalize", "similarity", "index", "tokens", "matcher", "context", "names",
            "wordlists")
GROUP = "monitor_engine"  # the name of mypyc's shared runtime module (<GROUP>__mypyc)
ENGINE_DIR = Path(__file__).resolve().parent
# MONITOR_ENGINE_BUILD: a build kept elsewhere (a read-only checkout, an image's layer)
BUILD_DIR = Path(os.environ.get("MONITOR_ENGINE_BUILD")
                 or ENGINE_DIR.parent.parent / "build" / "engine")
DIGEST_FILE = "sources.sha256"
reason = "not checked"  # why the pure-Python engine is in use ("" when it is not)


def source_digest() -> str:
    """What a build is valid for: this interpreter and every source the compiled modules
    were built with, the engine's and the item model's (mypyc may fold in what a module
    imports, so an edit to any of them makes the build stale, not only to the compiled
    ones)."""
    h = hashlib.sha256()
    h.update(sys.version.encode())
    h.update(str(sysconfig.get_config_var("EXT_SUFFIX")).encode())
    for path in [*sorted(ENGINE_DIR.glob("*.py")), ENGINE_DIR.parent / "models.py"]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def usable_build(build_dir: Path = BUILD_DIR) -> Path | None:
    """The folder of compiled modules to import, or None (with why in ``reason``)."""
    global reason
    if os.environ.get("MONITOR_ENGINE", "").lower() == "python":
        reason = "MONITOR_ENGINE=python"
        return None
    try:
        built = (build_dir / DIGEST_FILE).read_text().strip()
    except OSError:
        reason = f"not built ({build_dir}: python -m monitor.engine.build)"
        return None
    if built != source_digest():
        reason = (f"the build in {build_dir} is older than the engine's sources or this "
                  "Python; rebuild with: python -m monitor.engine.build")
        return None
    reason = ""
    return build_dir


class BuildError(Exception):
    """mypyc or the C compiler failed; the message is the end of what they printed."""


def active() -> str:
    """"compiled" or "python (why)": what a log line and ``monitor check`` report."""
    from monitor.engine import matcher

    if Path(matcher.__file__ or "").suffix in (".so", ".pyd"):
        return "compiled (mypyc)"
    return f"python ({reason})" if reason else "python"


def build(build_dir: Path = BUILD_DIR, force: bool = False) -> Path:
    """Compile the modules into ``build_dir`` and write the digest last, so that a build
    that fails halfway is never used. Needs mypy (the ``native`` extra) and a C compiler.
    Runs in a fresh interpreter with ``MONITOR_ENGINE=python``: the build reads the
    sources, never an earlier build. A build of these very sources is kept (its digest
    file touched, for make) unless ``force``: a checkout that rewrote the files without
    changing them costs no minute of compiling."""
    root = ENGINE_DIR.parent.parent
    digest = source_digest()
    marker = build_dir / DIGEST_FILE
    if not force and marker.is_file() and marker.read_text().strip() == digest:
        marker.touch()
        return build_dir
    with tempfile.TemporaryDirectory(prefix="monitor-native-") as tmp:
        out = Path(tmp) / "out"
        script = (
            "import sys\n"
            "from setuptools import setup\n"
            "from mypyc.build import mypycify\n"
            f"mods = [f'monitor/engine/{{m}}.py' for m in {COMPILED!r}]\n"
            f"exts = mypycify(mods, opt_level='3', group_name={GROUP!r}, "
            f"target_dir={str(Path(tmp) / 'c')!r})\n"
            "setup(name='monitor-engine-native', ext_modules=exts, script_args=["
            f"'-q', 'build_ext', '--build-lib', {str(out)!r}, "
            f"'--build-temp', {str(Path(tmp) / 'obj')!r}])\n"
        )
        env = dict(os.environ, MONITOR_ENGINE="python")
        done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env,
                              capture_output=True, text=True)
        if done.returncode:
            raise BuildError((done.stderr or done.stdout).strip()[-2000:])
        if build_dir.exists():
            shutil.rmtree(build_dir)
        shutil.copytree(out, build_dir)
    marker.write_text(digest + "\n")
    return build_dir
