"""Long-haul AI fabric twin."""
