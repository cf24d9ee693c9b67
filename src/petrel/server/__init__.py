"""What the broker and the router share: configuration, lifecycle and logging."""

from __future__ import annotations

from .config import (
    AddressSettings,
    BrokerSettings,
    ConfigError,
    LimitSettings,
    ListenerSettings,
    QueueSettings,
    TlsSettings,
    UserSettings,
    load_settings,
)
from .lifecycle import ExitCode, capture_signals
from .logging import configure_logging

__all__ = [
    "AddressSettings",
    "BrokerSettings",
    "ConfigError",
    "ExitCode",
    "LimitSettings",
    "ListenerSettings",
    "QueueSettings",
    "TlsSettings",
    "UserSettings",
    "capture_signals",
    "configure_logging",
    "load_settings",
]
