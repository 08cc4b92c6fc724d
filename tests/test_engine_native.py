"""The compiled matching engine (mypyc): used only while it is a build of the sources as
they are, and it finds exactly what the pure-Python engine finds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.engine import native
from tests.harness.feeds import shared_data

REPO = Path(__file__).resolve().parents[1]

# Matches on the labelled dev set, with the dev watchlist both as written and as a list of
# public figures (family names alone), and with the repository's own watchlist.
_MATCH_ALL = """
import json, sys
from dataclasses import asdict, replace
from pathlib import Path
from monitor.engine import native
from monitor.engine.matcher import compile_watchlists
from monitor.engine.watchlist import load_watchlist
from monitor.models import Item
dev = Path(sys.argv[1])
wl = load_watchlist(dev / "watchlist.yaml")
short = replace(wl, name="short", terms=tuple(replace(t, short=True) for t in wl.terms))
repo = load_watchlist(Path("rules/syria-iraq.yaml"))
matcher = compile_watchlists([wl, short, repo])
items = [Item.from_dict(json.loads(line))
         for line in (dev / "items.jsonl").read_text(encoding="utf-8").splitlines() if line]
found = [[list(asdict(m).values()) for m in matcher.find(item)] for item in items]
print(json.dumps({"engine": native.active(), "found": found}))
"""


def _match_all(dev: Path, engine: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_ENGINE"}
    if engine:
        env["MONITOR_ENGINE"] = engine
    done = subprocess.run([sys.executable, "-c", _MATCH_ALL, str(dev)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_compiled_engine_finds_exactly_what_the_python_engine_finds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "reason", native.reason)  # usable_build() rewrites it
    if native.usable_build() is None:
        reason = f"no usable compiled engine: {native.reason}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (make test builds it; CI must test what ships)")
        pytest.skip(reason)
    dev = shared_data("matching-dev")
    compiled, python = _match_all(dev, None), _match_all(dev, "python")
    assert compiled["engine"] == "compiled (mypyc)"
    assert str(python["engine"]).startswith("python (MONITOR_ENGINE=python")
    assert sum(len(f) for f in python["found"]) > 100  # type: ignore[attr-defined]
    assert compiled["found"] == python["found"]


def _fake_build(where: Path, digest: str) -> Path:
    (where / "monitor" / "engine").mkdir(parents=True)
    (where / native.DIGEST_FILE).write_text(digest + "\n")
    return where


def test_a_build_of_other_sources_is_never_used(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONITOR_ENGINE", raising=False)
    monkeypatch.setattr(native, "reason", native.reason)  # this worker's own, afterwards
    assert native.usable_build(tmp_path / "none") is None
    assert "not built" in native.reason and "python -m monitor.engine.build" in native.reason
    stale = _fake_build(tmp_path / "stale", "0" * 64)
    assert native.usable_build(stale) is None
    assert "older than the engine's sources" in native.reason
    fresh = _fake_build(tmp_path / "fresh", native.source_digest())
    assert native.usable_build(fresh) == fresh and native.reason == ""
    monkeypatch.setenv("MONITOR_ENGINE", "python")
    assert native.usable_build(fresh) is None and native.reason == "MONITOR_ENGINE=python"


def test_an_edit_to_any_engine_source_makes_the_build_stale(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """Not only the compiled modules: mypyc may fold in what they import."""
    engine = tmp_path / "monitor" / "engine"
    engine.mkdir(parents=True)
    for path in native.ENGINE_DIR.glob("*.py"):
        (engine / path.name).write_bytes(path.read_bytes())
    (tmp_path / "monitor" / "models.py").write_bytes(
        (native.ENGINE_DIR.parent / "models.py").read_bytes())
    monkeypatch.setattr(native, "ENGINE_DIR", engine)
    before = native.source_digest()
    assert before == native.source_digest()
    for name in ("english.py", "matcher.py"):
        text = (engine / name).read_text()
        (engine / name).write_text(text + "\n# edited\n")
        assert native.source_digest() != before, name
        (engine / name).write_text(text)
    (tmp_path / "monitor" / "models.py").write_text("# edited\n")
    assert native.source_digest() != before


def test_a_build_that_does_not_load_leaves_the_python_engine_in_use(tmp_path: Path) -> None:
    """A digest that matches beside a runtime that cannot load (a copied or damaged build):
    the engine still imports, in Python, and says why."""
    build = _fake_build(tmp_path / "broken", native.source_digest())
    (build / f"{native.GROUP}__mypyc{native.sysconfig.get_config_var('EXT_SUFFIX')}"
     ).write_bytes(b"not a shared object")
    script = ("from monitor.engine import native\n"
              "from monitor.engine.matcher import compile_watchlists\n"
              "print(native.active())\n")
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_ENGINE"}
    env["MONITOR_ENGINE_BUILD"] = str(build)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "does not load" in done.stdout and str(build) in done.stdout
