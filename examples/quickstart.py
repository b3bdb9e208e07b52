"""The README quickstart, runnable: `python examples/quickstart.py`."""

import logging
from datetime import timedelta

import bgjobs


def send_welcome(job: bgjobs.Job) -> None:
    print(f"welcome mail to user {job.payload['user_id']}")


bg = (
    bgjobs.new(bgjobs.sqlite("quickstart.db"))  # or bgjobs.postgres("postgresql://...")
    .with_event_listener(bgjobs.logging_listener())
    .with_queue(bgjobs.queue("default").with_worker(bgjobs.worker("send_welcome", send_welcome)))
    .build()
)

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    bg.enqueue("send_welcome", {"user_id": 1})
    bg.enqueue("send_welcome", {"user_id": 2}, delay=timedelta(seconds=2))
    bg.run()  # Ctrl-C drains and stops
