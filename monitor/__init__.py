"""monitor: news feeds -> transliteration-aware watchlists -> Slack alerts."""

__version__ = "0.1.0"
