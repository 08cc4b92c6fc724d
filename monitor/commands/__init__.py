"""One module per ``monitor`` subcommand; ``monitor.cli`` parses and dispatches."""
