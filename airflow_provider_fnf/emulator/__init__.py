"""Local emulator of Simple Message Queue (MNS) and Serverless Workflow (FnF).

A room of its own: it imports nothing from Airflow and nothing from the provider except the
leaf module :mod:`airflow_provider_fnf.limits` (the services' limits, shared numbers), and the
provider never imports it. Start it with ``python -m airflow_provider_fnf.emulator``.
"""
