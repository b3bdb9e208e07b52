# `just` is optional: every recipe is a thin alias of ./dev, which needs nothing preinstalled.

# run the demo app with the live status view (SQLite)
demo *args:
    ./dev demo {{args}}

# lint, type-check and run the whole test suite (SQLite + Postgres)
test *args:
    ./dev test {{args}}

# ruff + mypy --strict
lint:
    ./dev lint

# benchmarks: bgjobs vs a raw-SQL baseline, SQLite and Postgres
bench *args:
    ./dev bench {{args}}
