"""Use cases. They take repositories and settings, never build clients themselves."""
