"""Settings the benchmark's Airflow imports by dotted path (``[database] sql_alchemy_connect_args``).

SQLite's busy timeout is raised from Python's 5 s to 60 s: on a loaded 2-core machine a writer
can hold the database lock longer than 5 s, and a scheduler that meets ``database is locked``
exits. Every Airflow mode of the benchmark runs with the same settings.
"""

SQLITE_CONNECT_ARGS: dict[str, object] = {"timeout": 60}
SQLITE_CONNECT_ARGS_ASYNC: dict[str, object] = {"timeout": 60}
