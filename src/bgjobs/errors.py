"""Every error bgjobs raises on purpose. Each message names the problem and the fix."""

from __future__ import annotations


class BgJobsError(Exception):
    """Base class of all bgjobs errors."""


class ConfigError(BgJobsError, ValueError):
    """The builder was given something it cannot run (raised by ``build()``)."""


class ScheduleError(ConfigError):
    """A schedule (cron expression, interval or field builder) is invalid."""


class PayloadError(BgJobsError, TypeError):
    """A job payload cannot be stored as JSON."""


class UnknownWorkerError(BgJobsError, LookupError):
    """A job was enqueued under a name no worker handles."""


class DatabaseURLError(BgJobsError, ValueError):
    """A database URL or path could not be understood."""


class SchemaError(BgJobsError):
    """The database schema is older or newer than this version of bgjobs expects."""


class RuntimeStateError(BgJobsError, RuntimeError):
    """The runtime was asked to do something its current state does not allow."""


class UnknownScheduleError(BgJobsError, LookupError):
    """A schedule was named that the database does not know."""
