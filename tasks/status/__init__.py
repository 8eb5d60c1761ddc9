"""``inv status``: one screen of health; exit 1 when anything is unhealthy.

Read-only, in plain typed functions: facts in (recorded outputs in the tests), findings
out.

- :mod:`.findings`: the typed findings, the screen, ``--json``, the exit code;
- :mod:`.host`: a host's checks (UFW, fail2ban, sshd, the dead-man switch, security
  updates) and its drift (the host.harden steps' plans in check mode);
- :mod:`.cluster_reads` / :mod:`.cluster`: the cluster's reads and checks (nodes, Helm
  releases, workloads, Certificates, Flux, Kafka, PVCs and their usage);
- :mod:`.drift`: what differs from the repository in the cluster (the layers' facts);
- :mod:`.run`: the reads over SSH and through the API, and the task's run;
- :mod:`.task`: the ``inv status`` task.
"""
