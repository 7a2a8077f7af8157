"""Settings a local stack's Airflow on SQLite imports by dotted path (``[database] sql_alchemy_connect_args``).

SQLite's busy timeout is raised from Python's 5 s to 25 s: on a loaded 2-core machine a writer
can hold the database lock longer than 5 s, and a scheduler that meets ``database is locked``
exits (``airflow standalone`` does not start it again: every run then stays running). A burst
of runs started through the REST API (``MNSDispatchTrigger``, the benchmark's REST floor) while
the scheduler writes is what does it. It stays below 30 s, the triggerer's threshold for
declaring its event loop deadlocked (a triggerer waiting 60 s on the lock was declared
unhealthy). :class:`~tools.local_stack.stack.LocalStack` sets it for every stack on SQLite.
"""

SQLITE_CONNECT_ARGS: dict[str, object] = {"timeout": 25}
SQLITE_CONNECT_ARGS_ASYNC: dict[str, object] = {"timeout": 25}
SQLITE_ENV = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "tools.local_stack.sqlite_settings.SQLITE_CONNECT_ARGS",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": "tools.local_stack.sqlite_settings.SQLITE_CONNECT_ARGS_ASYNC",
}
"""The environment that points Airflow's SQLite engines at the settings above."""
