pytest_plugins = ["airflow_provider_fnf.testing"]
