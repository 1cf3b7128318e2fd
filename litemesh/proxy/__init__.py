"""The proxy engine: routes and services compiled from config, the per-request exchange, the upstream side."""
