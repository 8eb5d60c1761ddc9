"""The K3s VPS platform: Invoke collections (thin) and the code they call.

``tasks.py`` at the repository root is what ``inv`` loads; it exposes this package's
collections. Logic lives in plain typed modules: ``engine`` (targets, facts, steps),
``model`` (the inventory: model and validation), ``harden`` (the host layer), ``lab`` (test VMs).
"""
