"""The matching engine. Its hot modules run compiled (mypyc) when a build of exactly
these sources exists (``native``); otherwise, as written, in Python."""

from __future__ import annotations

import importlib
import sys

from monitor.engine import native

_built = native.usable_build()
if _built is not None:
    # mypyc's shared runtime is a top-level module; the compiled modules are found first.
    sys.path.append(str(_built))
    try:
        importlib.import_module(f"{native.GROUP}__mypyc")
    except ImportError as exc:  # a build this machine cannot load: Python, not a crash
        sys.path.remove(str(_built))
        native.reason = f"the build in {_built} does not load ({exc})"
    else:
        __path__.insert(0, str(_built / "monitor" / "engine"))
