"""``python -m fnf_emulator``: see :mod:`fnf_emulator.cli`."""

import sys

from fnf_emulator.cli import main

sys.exit(main())
