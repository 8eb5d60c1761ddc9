"""The root collection ``inv`` shows: one sub-collection per namespace."""

from __future__ import annotations

from invoke.collection import Collection

from tasks import charts, deploy, host, inventory, lab, tools
from tasks.gitops import ns as gitops_ns
from tasks.validate import validate

ns = Collection()
ns.add_collection(inventory.ns)
ns.add_collection(host.ns)
ns.add_collection(deploy.ns)
ns.add_collection(lab.ns)
ns.add_task(validate)
ns.add_collection(gitops_ns)
ns.add_collection(tools.ns)
ns.add_collection(charts.ns)
