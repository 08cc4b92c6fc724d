"""What every command shares: the documented exit codes."""

from __future__ import annotations

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_SERVICE = 0, 1, 2, 3
