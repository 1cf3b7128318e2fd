"""Per-route filters, one concern each; :mod:`litemesh.filters.context` is the contract they are written against."""
