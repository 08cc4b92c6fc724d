"""monitor: news feeds -> transliteration-aware watchlists -> Slack alerts."""

from importlib.metadata import PackageNotFoundError, version

try:  # one version, pyproject.toml's, whether installed or run from a checkout
    __version__ = version("monitor")
except PackageNotFoundError:  # pragma: no cover - source tree without an install
    __version__ = "0.0.0+unknown"
