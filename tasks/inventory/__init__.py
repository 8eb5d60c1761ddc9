"""The inventory: model, rules, loading."""

from tasks.inventory.load import Loaded, choose_path, load
from tasks.inventory.model import Host, Inventory

__all__ = ["Host", "Inventory", "Loaded", "choose_path", "load"]
