"""The store tests' fixtures: ``store_factory`` runs a test on every durable store."""

from __future__ import annotations

from .helpers import store_factory

__all__ = ["store_factory"]
