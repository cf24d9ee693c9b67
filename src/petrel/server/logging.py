"""Logging for the servers: named loggers and one dictConfig."""

from __future__ import annotations

import logging
import logging.config

__all__ = ["TRACE", "configure_logging"]

#: A level below DEBUG for per-frame and per-message detail.
TRACE = 5
logging.addLevelName(TRACE, "TRACE")


def configure_logging(level: str = "info") -> None:
    """Log to stderr at ``level`` (``trace`` also switches the frame trace on)."""
    numeric = TRACE if level.lower() == "trace" else getattr(logging, level.upper())
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "default": {
                    "format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                },
            },
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": "default",
                    "stream": "ext://sys.stderr",
                },
            },
            "loggers": {
                "petrel": {"level": numeric, "handlers": ["stderr"], "propagate": False},
                "petrel.frames": {"level": logging.DEBUG if numeric <= TRACE else logging.WARNING},
            },
        }
    )
