"""Flow definitions of both languages: recognised by their shape, compiled by their own front end.

``Type: StateMachine`` (with ``SpecVersion``, ``StartAt``, ``States``) is CloudFlow's language
(:mod:`.cloudflow`); anything else is read as the previous service's FDL (``version``, ``type:
flow``, ``steps``; :mod:`.fdl`), whose errors then say what is missing.
"""

from __future__ import annotations

from fnf_emulator.fnf import cloudflow, fdl
from fnf_emulator.fnf.program import DefinitionError, Flow

__all__ = ["DefinitionError", "parse_definition"]


def parse_definition(text: str, mode: str = "Standard") -> Flow:
    """Parse, validate and compile a definition for a flow of ExecutionMode ``mode``."""
    raw = fdl.load_definition(text)
    if cloudflow.is_state_machine(raw):
        return cloudflow.build_state_machine(raw, mode)
    return fdl.build_flow(raw)
