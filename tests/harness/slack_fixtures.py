"""Fixtures for the SlackStub."""
