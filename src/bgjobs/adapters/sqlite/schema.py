"""SQLite schema and its versioned migrations. Times are INTEGER microseconds since the epoch (UTC):
sortable, exact, and cheap to compare in the claim index."""

from __future__ import annotations

import sqlite3

import sqlite_utils

from bgjobs.adapters.rows import scalar

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE bgjobs_jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            queue TEXT NOT NULL,
            name TEXT NOT NULL,
            payload TEXT NOT NULL,
            priority INTEGER NOT NULL DEFAULT 0,
            attempt INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            available_at INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            scheduled_at INTEGER NOT NULL,
            reserved_by TEXT,
            reserved_at INTEGER,
            lease_expires_at INTEGER,
            unique_key TEXT,
            schedule TEXT,
            errors TEXT NOT NULL DEFAULT '[]'
        )""",
        # The claim walks this partial index in claim order and never sees running rows.
        """CREATE INDEX bgjobs_jobs_claim ON bgjobs_jobs (queue, priority, available_at, id)
           WHERE reserved_by IS NULL""",
        """CREATE INDEX bgjobs_jobs_fifo ON bgjobs_jobs (queue, scheduled_at, id)""",
        """CREATE INDEX bgjobs_jobs_leases ON bgjobs_jobs (queue, lease_expires_at)
           WHERE reserved_by IS NOT NULL""",
        """CREATE UNIQUE INDEX bgjobs_jobs_unique ON bgjobs_jobs (unique_key)
           WHERE unique_key IS NOT NULL""",
        """CREATE TABLE bgjobs_archive (
            id INTEGER PRIMARY KEY,
            queue TEXT NOT NULL,
            name TEXT NOT NULL,
            payload TEXT NOT NULL,
            priority INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            max_attempts INTEGER NOT NULL,
            available_at INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            scheduled_at INTEGER NOT NULL,
            reserved_by TEXT,
            reserved_at INTEGER,
            unique_key TEXT,
            schedule TEXT,
            errors TEXT NOT NULL DEFAULT '[]',
            state TEXT NOT NULL,
            finished_at INTEGER NOT NULL
        )""",
        "CREATE INDEX bgjobs_archive_finished ON bgjobs_archive (finished_at, queue, state)",
        "CREATE INDEX bgjobs_archive_state ON bgjobs_archive (state, queue, finished_at)",
        "CREATE INDEX bgjobs_archive_name ON bgjobs_archive (name, state)",
        """CREATE TABLE bgjobs_nodes (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started_at INTEGER NOT NULL,
            heartbeat_at INTEGER NOT NULL,
            queues TEXT NOT NULL DEFAULT '[]'
        )""",
        """CREATE TABLE bgjobs_schedules (
            name TEXT PRIMARY KEY,
            definition TEXT NOT NULL,
            queue TEXT NOT NULL,
            last_due_at INTEGER,
            last_finished_at INTEGER,
            last_outcome TEXT
        )""",
    ],
    # Fast recovery and poison-pill isolation (reliability.md): how often a job was rescued, the
    # node's liveness lock file, and the few waiting suspects, which only a suspect claim takes.
    2: [
        "ALTER TABLE bgjobs_jobs ADD COLUMN rescues INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE bgjobs_archive ADD COLUMN rescues INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE bgjobs_nodes ADD COLUMN lock_key TEXT",
        # A plain claim skips suspects: the claim index leaves them out, so it stays covering.
        "DROP INDEX bgjobs_jobs_claim",
        """CREATE INDEX bgjobs_jobs_claim ON bgjobs_jobs (queue, priority, available_at, id)
           WHERE reserved_by IS NULL AND rescues < 2""",
        """CREATE INDEX bgjobs_jobs_suspects ON bgjobs_jobs (queue, priority, available_at, id)
           WHERE reserved_by IS NULL AND rescues >= 2""",
    ],
    # What each node publishes it runs (rolling deploys): {"workers": {queue: [name, ...]},
    # "schedules": {name: definition}}.
    3: ["ALTER TABLE bgjobs_nodes ADD COLUMN offers TEXT NOT NULL DEFAULT '{}'"],
    4: [
        # Unique keys: one row per key, pointing at the job holding it (a scheduled job's
        # pending run, or a job enqueued with unique=...). The primary key is what makes two
        # enqueues of one key impossible; whether the holder still holds it is decided from the
        # holder's state and the hold stored here (adapters.decisions.key_taken).
        """CREATE TABLE bgjobs_unique_keys (
            key TEXT PRIMARY KEY,
            job_id INTEGER NOT NULL,
            while_running INTEGER NOT NULL,
            keep_states TEXT NOT NULL DEFAULT '[]',
            period_us INTEGER
        ) WITHOUT ROWID""",
        """INSERT INTO bgjobs_unique_keys (key, job_id, while_running)
           SELECT unique_key, id, 1 FROM bgjobs_jobs WHERE unique_key IS NOT NULL""",
        # The keys table is the one place uniqueness is enforced now.
        "DROP INDEX bgjobs_jobs_unique",
        # Set when someone asks to cancel a running job; its node stops it.
        "ALTER TABLE bgjobs_jobs ADD COLUMN cancel_requested_at INTEGER",
        """CREATE INDEX bgjobs_jobs_cancel ON bgjobs_jobs (reserved_by)
           WHERE cancel_requested_at IS NOT NULL""",
    ],
    # Schedules you can operate: a history of every due time, pause, the run slot that keeps
    # runs of one schedule from overlapping, and which live node defines which schedule.
    5: [
        "ALTER TABLE bgjobs_schedules ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE bgjobs_schedules ADD COLUMN last_started_at INTEGER",
        "ALTER TABLE bgjobs_schedules ADD COLUMN running_job INTEGER",
        "ALTER TABLE bgjobs_schedules ADD COLUMN paused_at INTEGER",
        "ALTER TABLE bgjobs_schedules ADD COLUMN paused_until INTEGER",
        "ALTER TABLE bgjobs_schedules ADD COLUMN removed_at INTEGER",
        """CREATE TABLE bgjobs_schedule_history (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            schedule TEXT NOT NULL,
            outcome TEXT NOT NULL,
            due_at INTEGER NOT NULL,
            last_due_at INTEGER,
            occurrences INTEGER,
            job_id INTEGER,
            node TEXT,
            started_at INTEGER,
            result TEXT,
            manual INTEGER NOT NULL DEFAULT 0,
            recorded_at INTEGER NOT NULL
        )""",
        # A schedule's newest entries; and prune by age.
        """CREATE INDEX bgjobs_schedule_history_schedule
           ON bgjobs_schedule_history (schedule, id)""",
        """CREATE INDEX bgjobs_schedule_history_recorded
           ON bgjobs_schedule_history (recorded_at)""",
        """CREATE TABLE bgjobs_node_schedules (
            schedule TEXT NOT NULL,
            node_id TEXT NOT NULL,
            published_at INTEGER NOT NULL,
            PRIMARY KEY (schedule, node_id)
        )""",
    ],
    6: [],
    7: [],
    # Observability: what integrations carry with a job (a JSON object, e.g. the W3C trace
    # context) and the progress its handler last reported. NULL when unused, so a plain job
    # stores nothing more.
    8: [
        f"ALTER TABLE {table} ADD COLUMN {column}"
        for table in ("bgjobs_jobs", "bgjobs_archive")
        for column in ("meta TEXT", "progress REAL", "progress_message TEXT")
    ],
}

VERSION_TABLE = "bgjobs_schema"


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database (0 when bgjobs was never installed there)."""
    if not sqlite_utils.Database(conn)[VERSION_TABLE].exists():
        return 0
    return int(scalar(conn.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone()) or 0)


def migrate(cur: sqlite3.Cursor, target: int, applied_at_us: int) -> int:
    """Bring the database to ``target`` inside the caller's write transaction; return the version
    found before. The caller checks that the stored version is not newer than it understands."""
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE}"
        " (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
    )
    start = int(scalar(cur.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone()) or 0)
    for version in range(start + 1, target + 1):
        for statement in MIGRATIONS[version]:
            cur.execute(statement)
        cur.execute(
            f"INSERT INTO {VERSION_TABLE} (version, applied_at) VALUES (?, ?)",
            (version, applied_at_us),
        )
    return start
