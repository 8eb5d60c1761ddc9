"""deploy.all: the layers and their order (what brings CRDs before what uses them)."""

from __future__ import annotations

from tasks import apps, flux, ingress, k3s, kafka, monitoring
from tasks import harden as harden_layer
from tasks.deploy import LAYERS


def test_layers_run_in_dependency_order() -> None:
    assert [name for name, _ in LAYERS] == [
        "host.harden", "k3s.install", "ingress.certs", "monitoring.install", "kafka.deploy",
        "flux.bootstrap", "apps.deploy"]


def test_each_layer_is_the_task_of_its_name() -> None:
    assert [run for _, run in LAYERS] == [
        harden_layer.run, k3s.run, ingress.run, monitoring.install, kafka.run, flux.bootstrap,
        apps.deploy]
