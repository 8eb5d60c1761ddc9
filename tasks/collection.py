"""The root collection ``inv`` shows: one sub-collection per namespace."""

from __future__ import annotations

from invoke.collection import Collection

from tasks import charts, deploy, host, inventory, lab, tools
from tasks.apps.collection import ns as apps_ns
from tasks.backup.collection import ns as backup_ns
from tasks.doctor.task import doctor
from tasks.flux.collection import ns as flux_ns
from tasks.gitops import ns as gitops_ns
from tasks.ingress.collection import ns as ingress_ns
from tasks.k3s.collection import ns as k3s_ns
from tasks.kafka.collection import ns as kafka_ns
from tasks.monitoring.collection import ns as monitoring_ns
from tasks.secrets_tasks import ns as secrets_ns
from tasks.status.task import status
from tasks.upgrade.collection import upgrade
from tasks.validate import validate

ns = Collection()
ns.add_collection(inventory.ns)
ns.add_collection(host.ns)
ns.add_collection(deploy.ns)
ns.add_collection(lab.ns)
ns.add_task(validate)
ns.add_task(doctor)
ns.add_task(status)
ns.add_collection(gitops_ns)
ns.add_collection(k3s_ns)
ns.add_collection(ingress_ns)
ns.add_collection(flux_ns)
ns.add_collection(apps_ns)
ns.add_collection(kafka_ns)
ns.add_collection(monitoring_ns)
ns.add_collection(secrets_ns)
ns.add_collection(tools.ns)
ns.add_collection(charts.ns)
ns.add_task(upgrade)
ns.add_collection(backup_ns)
