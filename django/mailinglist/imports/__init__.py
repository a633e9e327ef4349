"""Bringing an audience in: CSV files read as real tools write them, imported by a Celery job."""
