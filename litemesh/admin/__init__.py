"""The master's admin listener (control plane): status, readiness, metrics and reload over HTTP/1.1."""
from .server import AdminApp, AdminServer

__all__ = [
    "AdminApp",  # what the master implements: status(), ready(), metrics(), async reload()
    "AdminServer",  # the listener: start(host, port) -> bound port, close()
]
