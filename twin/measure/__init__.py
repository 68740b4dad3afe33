"""Measurements of the twin and of its host: calibration against independent tools, and how
punctual the machine is."""
