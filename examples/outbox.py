"""The outbox pattern: create the user and send the welcome mail, or neither.

The user row and the welcome-mail job are written in one transaction on the application's own
connection (``enqueue(..., conn=conn)``): if the sign-up fails half-way and rolls back, no mail
goes out for a user who does not exist, and no user is left without one.

    python examples/outbox.py                                    # SQLite, outbox.db
    python examples/outbox.py "postgresql://user@localhost/app"  # Postgres
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from typing import Any

import bgjobs
from bgjobs.adapters.base import JobFilter

sent: list[int] = []  # the mails "sent" by this process, for the demo's report
mail_sent = threading.Event()


def send_welcome(job: bgjobs.Job) -> None:
    print(f"  welcome mail to user {job.payload['user_id']}")  # type: ignore[index,call-overload]
    sent.append(job.payload["user_id"])  # type: ignore[index,call-overload]
    mail_sent.set()


class SignUpFailed(Exception):
    pass


def sign_up_sqlite(bg: bgjobs.BgJobs, db: sqlite3.Connection, email: str, fail: bool) -> None:
    with db:  # commits at the end of the block, rolls back if it raises
        cur = db.execute("INSERT INTO users (email) VALUES (?)", (email,))  # opens the transaction
        bg.enqueue("send_welcome", {"user_id": cur.lastrowid}, conn=db)
        if fail:
            raise SignUpFailed(f"{email}: the payment check failed")


def sign_up_postgres(bg: bgjobs.BgJobs, conn: Any, email: str, fail: bool) -> None:
    with conn.transaction():  # commits at the end of the block, rolls back if it raises
        row = conn.execute("INSERT INTO users (email) VALUES (%s) RETURNING id", (email,))
        bg.enqueue("send_welcome", {"user_id": row.fetchone()[0]}, conn=conn)
        if fail:
            raise SignUpFailed(f"{email}: the payment check failed")


def main(url: str = "sqlite:///outbox.db", schema: str = "public") -> dict[str, Any]:
    """Sign up two users, the second failing; run the mails. Returns what ended up where."""
    sent.clear()
    mail_sent.clear()
    postgres = url.startswith(("postgresql://", "postgres://"))
    store = bgjobs.postgres(url, schema=schema) if postgres else bgjobs.open_store(url)
    bg = (
        bgjobs.new(store)
        .with_queue(bgjobs.queue("mail").with_worker(bgjobs.worker("send_welcome", send_welcome)))
        .build()
    )
    bg.store.open()  # migrate at start-up, before the application's transactions use the file
    if postgres:
        import psycopg

        conn: Any = psycopg.connect(url, options=f"-c search_path={schema}", autocommit=True)
        conn.execute("CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, email text)")
        sign_up = sign_up_postgres
    else:
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT)")
        sign_up = sign_up_sqlite
    for email, fail in (("ada@example.com", False), ("bob@example.com", True)):
        try:
            sign_up(bg, conn, email, fail)
            print(f"signed up {email}")
        except SignUpFailed as exc:
            print(f"sign-up rolled back: {exc}")
    with bg:  # run the queue until Ada's mail is out
        mail_sent.wait(30)
    users = [row[0] for row in conn.execute("SELECT email FROM users ORDER BY id").fetchall()]
    conn.close()
    jobs = bg.store.list_jobs(JobFilter(name="send_welcome"))
    bg.store.close()
    print(f"users: {users}; welcome mails sent: {len(sent)}")
    return {"users": users, "jobs": len(jobs), "sent": list(sent)}


if __name__ == "__main__":
    main(*sys.argv[1:])
