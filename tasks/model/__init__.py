"""The inventory model: typed sections, value rules, loading and validation."""

from tasks.model.load import Loaded, choose_path, load
from tasks.model.model import Host, Inventory

__all__ = ["Host", "Inventory", "Loaded", "choose_path", "load"]
