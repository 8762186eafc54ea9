"""Command-line interface: parses options, calls the library, writes outputs."""
