"""Operator commands. Each module runs as ``python scripts/<name>.py`` from the project root."""
