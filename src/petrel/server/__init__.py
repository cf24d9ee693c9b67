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
from .users import (
    User,
    UserDirectory,
    UsersFileError,
    edit_users_file,
    make_user,
    read_users_file,
)

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
    "User",
    "UserDirectory",
    "UserSettings",
    "UsersFileError",
    "capture_signals",
    "configure_logging",
    "edit_users_file",
    "load_settings",
    "make_user",
    "read_settings",
    "read_users_file",
    "serve",
    "terminus_address",
]
