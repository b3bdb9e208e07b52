"""The `bgjobs` command line (see docs/cli.md)."""
