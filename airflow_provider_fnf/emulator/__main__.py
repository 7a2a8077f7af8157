"""``python -m airflow_provider_fnf.emulator``: see :mod:`airflow_provider_fnf.emulator.cli`."""

import sys

from airflow_provider_fnf.emulator.cli import main

sys.exit(main())
