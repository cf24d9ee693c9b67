"""The router network: interior routers that forward messages along least-cost paths.

:class:`Router` is the server (``petrel router``); :class:`RouterSettings` its
configuration.  The decision core (:mod:`petrel.router.routing`) is sans-IO.
"""

from .config import RouterSettings, load_router_settings
from .router import Router

__all__ = ["Router", "RouterSettings", "load_router_settings"]
