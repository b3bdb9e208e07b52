"""`bgjobs status` during a rolling deploy: nodes that define a scheduled job differently are
named, with the definition that runs. Real runtimes run in the test, on both backends."""

from __future__ import annotations

from tests.cli.conftest import Invoke, as_json, ok

import bgjobs


def runtime(database_url: str, hours: int) -> bgjobs.BgJobs:
    tick = bgjobs.scheduled_job(bgjobs.worker("tick", lambda job: None), bgjobs.every(hours=hours))
    return bgjobs.new(database_url).with_scheduled_job(tick).build()


def test_status_names_a_schedule_live_nodes_define_differently(
    database_url: str, migrated: Invoke
) -> None:
    old, new = runtime(database_url, 1), runtime(database_url, 2)
    with old:
        assert as_json(migrated("status", "--json"))["schedule_conflicts"] == []
        with new:
            (conflict,) = as_json(migrated("status", "--json"))["schedule_conflicts"]
            text = ok(migrated("status", env={"COLUMNS": "200"}))
    for bg in (old, new):
        bg.store.close()
    assert conflict["schedule"] == "tick" and conflict["winner"] == "every 2h"
    assert conflict["definitions"] == sorted([[old.node_id, "every 1h"], [new.node_id, "every 2h"]])
    assert "tick: running nodes define it differently (" in text
    assert "the newest node's definition runs: every 2h" in text
