"""``backup.create`` / ``backup.restore`` / ``backup.list``: the K3s control plane's state.

What a backup holds (one tar, age-encrypted on the operator's machine for
``secrets.age_recipients``; never in clear on the operator's disk):

- the datastore of the first server: a consistent copy of the embedded SQLite database
  (``<data_dir>/server/db/state.db``, taken with SQLite's online backup API while K3s
  runs, ``PRAGMA integrity_check`` on the copy), or, where the server runs embedded etcd
  (several servers), a ``k3s etcd-snapshot save``;
- the server token (``<data_dir>/server/token``, K3s's own copy when there is one) and
  ours (``/etc/rancher/k3s/cluster-token``): the datastore's bootstrap data (CA keys,
  the Secrets encryption key) is encrypted with it;
- our config: ``/etc/rancher/k3s/config.yaml``, the PodSecurity and audit policies, our
  systemd unit.

Not in it: volumes (local-path PVs of Prometheus, Grafana, Kafka...), container images.

Modules: :mod:`.host` (facts and the scripts run on the server, pure),
:mod:`.archive` (the local side: names, retention, age), :mod:`.run` (the tasks' logic),
:mod:`.collection` (the ``backup`` namespace).
"""
