"""Pure analysis behind the specialist agents: functions over source text, parsed files and
pydantic models, with no bus, database or HTTP in sight."""
