"""`make faults`: the deployed stack as processes, faults injected while a unit writes events, and a table of
what was accepted, stored and delivered (docs/reliability.md). See tools/faults/faults.py."""
