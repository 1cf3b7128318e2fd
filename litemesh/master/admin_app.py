"""The admin API's view of the master (status, readiness, metrics, reload)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .master import Master


class MasterAdminApp:
    def __init__(self, master: "Master") -> None:
        self.master = master

    def status(self) -> dict[str, Any]:
        return self.master.status()

    def ready(self) -> bool:
        return self.master.ready()

    def metrics(self) -> str:
        return self.master.metrics_text()

    async def reload(self) -> tuple[bool, dict[str, Any]]:
        return await self.master.reload()
