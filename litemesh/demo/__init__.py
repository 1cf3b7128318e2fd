"""Demo upstream services for ``make run`` / ``litemesh demo`` (not part of the gateway)."""
