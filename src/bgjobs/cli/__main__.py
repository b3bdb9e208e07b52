"""`python -m bgjobs.cli`."""

from bgjobs.cli.main import main

main()
