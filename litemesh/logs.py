"""Process logging: stderr or a file that SIGUSR1 reopens (after logrotate moved it away).

With ``owner`` (``server.user``'s uid and gid), a root process hands every file it opens to that
user: workers that switched users reopen the file the master created after a rotation.
"""
from __future__ import annotations

import logging
import os
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"


class ReopenableFileHandler(logging.FileHandler):
    def __init__(self, filename: str, owner: tuple[int, int] | None = None) -> None:
        self.owner = owner
        super().__init__(filename)

    def _open(self):  # type: ignore[no-untyped-def]
        stream = super()._open()
        if self.owner is not None and os.geteuid() == 0:
            os.fchown(stream.fileno(), *self.owner)
        return stream

    def reopen(self) -> None:
        self.acquire()
        try:
            try:
                stream = self._open()
            except OSError as error:  # keep logging to the old file rather than nowhere
                print(f"litemesh[{os.getpid()}]: cannot reopen log file {self.baseFilename}: {error}",
                      file=sys.stderr)
                return
            if self.stream is not None:
                self.stream.close()
            self.stream = stream
        finally:
            self.release()


def setup_logging(level: str = "info", log_file: str = "", owner: tuple[int, int] | None = None) -> None:
    handler: logging.Handler = ReopenableFileHandler(log_file, owner) if log_file else logging.StreamHandler()
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
