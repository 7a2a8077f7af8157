"""Local emulator of Simple Message Queue (MNS) and Serverless Workflow (FnF).

A distribution of its own (``fnf-emulator``): it imports nothing from Airflow or from the
provider, keeps its own copy of the services' limits (:mod:`fnf_emulator.limits`, so a wrong
limit on the client side is caught here), and the provider never imports it. Start it with
``fnf-emulator`` or ``python -m fnf_emulator``; in pytest, use the ``fnf_emulator`` fixture
(:mod:`fnf_emulator.pytest_plugin`).
"""

__version__ = "0.1.0"
