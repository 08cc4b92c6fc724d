"""Fixtures for the FeedStub (filled in with the fetch layer)."""
