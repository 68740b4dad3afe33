"""Experiments that answer the twin's questions: efficiency vs a single site, determinism vs best
effort, campaigns of sweeps, and the demo."""
