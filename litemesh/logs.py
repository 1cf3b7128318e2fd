"""Process logging: stderr or a file that SIGUSR1 reopens (after logrotate moved it away)."""
from __future__ import annotations

import logging

_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"


class ReopenableFileHandler(logging.FileHandler):
    def reopen(self) -> None:
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


def setup_logging(level: str = "info", log_file: str = "") -> None:
    handler: logging.Handler = ReopenableFileHandler(log_file) if log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def reopen_log_files() -> None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, ReopenableFileHandler):
            handler.reopen()
