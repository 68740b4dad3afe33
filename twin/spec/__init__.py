"""The files users write (topologies, campaigns, schedules) and their validated models."""
