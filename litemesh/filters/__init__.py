"""Per-route filters, one concern each (see :mod:`litemesh.proxy.filter` for the hook contract)."""
