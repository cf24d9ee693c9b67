"""What the broker and the router share: configuration, lifecycle, logging, the listeners
and the admission policy, and the connection handling under their own."""

from __future__ import annotations

from .config import (
    AddressSettings,
    BrokerSettings,
    ConfigError,
    LimitSettings,
    ListenerSettings,
    QueueSettings,
    ServerSettings,
    TlsSettings,
    UserSettings,
    load_settings,
    read_settings,
)
from .connection import LinkHandler, ServerConnection, ServerState
from .lifecycle import ExitCode, Servable, capture_signals, serve
from .listening import Listeners
from .logging import configure_logging
from .nodes import Node, NodeRegistry, terminus_address
from .policy import ConnectionPolicy

__all__ = [
    "AddressSettings",
    "BrokerSettings",
    "ConfigError",
    "ConnectionPolicy",
    "ExitCode",
    "LimitSettings",
    "LinkHandler",
    "ListenerSettings",
    "Listeners",
    "Node",
    "NodeRegistry",
    "QueueSettings",
    "Servable",
    "ServerConnection",
    "ServerSettings",
    "ServerState",
    "TlsSettings",
    "UserSettings",
    "capture_signals",
    "configure_logging",
    "load_settings",
    "read_settings",
    "serve",
    "terminus_address",
]
