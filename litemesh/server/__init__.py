"""Downstream transport glue: listeners, the per-connection protocol, timers, the worker loop."""
