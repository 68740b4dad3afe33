"""The ``twin`` command."""
