"""Event blueprints (SQS upload events, schedules): thin, they call services."""
