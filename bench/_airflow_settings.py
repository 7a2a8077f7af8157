"""Settings the benchmark's Airflow imports by dotted path (``[database] sql_alchemy_connect_args``).

SQLite's busy timeout is raised from Python's 5 s to 25 s: on a loaded 2-core machine a writer
can hold the database lock longer than 5 s, and a scheduler that meets ``database is locked``
exits. It stays below 30 s, the triggerer's threshold for declaring its event loop deadlocked
(a triggerer waiting 60 s on the lock was declared unhealthy). Every Airflow mode of the
benchmark runs with the same settings.
"""

SQLITE_CONNECT_ARGS: dict[str, object] = {"timeout": 25}
SQLITE_CONNECT_ARGS_ASYNC: dict[str, object] = {"timeout": 25}
