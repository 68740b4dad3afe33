"""The machine the twin runs on: its daemons, what it offers, the worker image, run folders and
process helpers."""
