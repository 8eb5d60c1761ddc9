"""The inventory: the single source of truth for hosts, addresses, versions and settings.

Every section has the values of ``STACK.md`` as defaults; only ``domain``,
``acme_email``, ``operators`` and ``hosts`` must be given. ``inventory.schema.json``
(for editors) is generated from these classes: ``inv inventory.schema``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tasks.model import rules
from tasks.model.fields import spec

SPEC_TOPICS = [
    "travel-generation.progress", "travel-generation.completed",
    "travel-enrichment.progress", "travel-enrichment.completed",
    "travel-proposal.progress", "travel-proposal.completed",
]
SPEC_AGE_RECIPIENT = "age1e3z2qzqmxrhnp9ar07xs60qhwgaxaz8tn00464qkttkny4jn6gwsp5uavd"


@dataclass(frozen=True)
class SshForward:
    host_port: int = spec(doc="A port sshd may listen on, on the host.", rule=rules.PORT)
    local_port: int = spec(doc="The port to connect to from here to reach it.",
                           rule=rules.PORT)


@dataclass(frozen=True)
class Host:
    name: str = spec(doc="Node name (a DNS label); also the Kubernetes node name.",
                     rule=rules.DNS_LABEL)
    address: str = spec(doc="IP address or DNS name to reach the host over SSH.",
                        rule=rules.ADDRESS)
    user: str = spec(doc="SSH login user with sudo; not root (host.harden turns root login off).",
                     rule=rules.SSH_USER)
    key_file: str = spec(doc="Private key for SSH; relative paths are relative to the"
                             " inventory file, ~ is expanded. Must exist and be a private"
                             " key when a task connects.", rule=rules.FILE_PATH)
    port: int | None = spec(
        None, doc="SSH port to connect to. Default: host.ssh.port (through ssh_forwards when"
        " they map it). When nothing answers there, host.ssh.port, 22 and the ssh_forwards"
        " are tried in turn, so a run that moves sshd to another port finds it again.",
        rule=rules.PORT)
    ssh_forwards: list[SshForward] = spec(
        doc="Port forwarding or NAT in front of the host: for each port sshd may listen on"
        " there, the port to connect to from here (the lab VM uses this).", factory=list)
    role: Literal["server", "agent"] = spec("server", doc="K3s role: server or agent.")
    internal_address: str | None = spec(
        None, doc="The node's IP inside the cluster (its Kubernetes InternalIP) when it is"
        " not `address` (NAT, port forwarding, a DNS name). Prometheus scrapes the K3s"
        " controller manager, scheduler and kube-proxy there. Default: address.",
        rule=rules.NODE_IP)

    def connect_port(self, sshd_port: int) -> int:
        """The port to connect to from here when sshd listens on ``sshd_port``."""
        return next((f.local_port for f in self.ssh_forwards if f.host_port == sshd_port),
                    sshd_port)

    def connect_ports(self, sshd_port: int) -> tuple[int, ...]:
        """Where to look for sshd, first choice first, when it should be on ``sshd_port``."""
        first = self.port if self.port is not None else self.connect_port(sshd_port)
        return tuple(dict.fromkeys([first, self.connect_port(sshd_port), self.connect_port(22),
                                    *(f.local_port for f in self.ssh_forwards)]))


@dataclass(frozen=True)
class Ssh:
    port: int = spec(22, doc="Port sshd listens on, on the hosts.", rule=rules.PORT)
    known_hosts: str = spec("known_hosts", doc="Project known_hosts file, relative to the"
                            " inventory file. Unknown keys are refused unless"
                            " --trust-new-host-key is given.", rule=rules.FILE_PATH)
    connect_timeout: int = spec(10, doc="Seconds to wait for SSH to answer.",
                                rule=rules.int_range(1, 300))
    rate_limit: bool = spec(True, doc="Rate-limit new SSH connections (ufw limit) for"
                            " addresses outside the operator allow-list.")


@dataclass(frozen=True)
class Firewall:
    open_tcp: list[int] = spec(doc="TCP ports open to the world besides SSH (never SSH"
                               " itself, the API, the kubelet, etcd, node-exporter...).",
                               rule=rules.PORT, factory=lambda: [80, 443])
    api_port: int = spec(6443, doc="Kubernetes API port, open only to operators and"
                         " nodes.", rule=rules.PORT)


@dataclass(frozen=True)
class Fail2ban:
    bantime: str = spec("10m", doc="How long an address stays banned.", rule=rules.DURATION)
    findtime: str = spec("10m", doc="Window in which failures are counted.",
                         rule=rules.DURATION)
    maxretry: int = spec(5, doc="Failures within findtime before a ban.",
                         rule=rules.int_range(1, 100))


@dataclass(frozen=True)
class Updates:
    enabled: bool = spec(True, doc="Install security updates automatically.")
    reboot: bool = spec(False, doc="Reboot automatically when an update requires it.")
    reboot_time: str = spec("04:00", doc="When an automatic reboot may happen.",
                            rule=rules.TIME_OF_DAY)


@dataclass(frozen=True)
class Kernel:
    accept_ra: Literal["auto", "yes", "no"] = spec(
        "auto", doc="IPv6 router advertisements. auto: kept where the host gets IPv6 by"
        " them (it has a route learnt from one), turned off (with autoconfiguration)"
        " elsewhere; yes or no to decide.")
    allow_modules: list[str] = spec(
        doc="Kernel modules host.harden blocks that this host needs after all (sctp for"
        " SCTP Services, udf to mount DVD images, ...).", rule=rules.KERNEL_MODULE,
        factory=list)


@dataclass(frozen=True)
class HostLayer:
    ssh: Ssh = spec(Ssh(), doc="sshd and SSH client settings.")
    firewall: Firewall = spec(Firewall(), doc="UFW settings.")
    fail2ban: Fail2ban = spec(Fail2ban(), doc="fail2ban sshd jail.")
    updates: Updates = spec(Updates(), doc="Automatic security updates.")
    kernel: Kernel = spec(Kernel(), doc="Kernel settings and modules.")
    deadman_seconds: int = spec(300, doc="Seconds after which SSH/firewall changes roll back"
                                " unless a fresh SSH login confirms them.",
                                rule=rules.int_range(30, 3600))
    extra_packages: list[str] = spec(doc="More Debian packages to install.",
                                     rule=rules.DEB_PACKAGE, factory=list)


@dataclass(frozen=True)
class Versions:
    k3s: str = spec("v1.33.3+k3s1", doc="K3s release.", rule=rules.K3S_VERSION)
    cert_manager: str = spec("v1.13.1", doc="cert-manager chart.", rule=rules.SEMVER)
    flux: str = spec("2.6.4", doc="Flux release.", rule=rules.SEMVER)
    kube_prometheus_stack: str = spec(
        "85.4.0", doc="kube-prometheus-stack chart (85.4.0: Prometheus Operator v0.90.1,"
        " whose CRDs match the schemas inv validate uses; Kubernetes >= 1.25).",
        rule=rules.SEMVER)
    strimzi: str = spec("0.47.0", doc="Strimzi operator chart (0.46+ is KRaft-only; 0.47"
                        " supports Kubernetes 1.25+, so 1.33).", rule=rules.SEMVER)
    kafka: str = spec("4.0.0", doc="Apache Kafka version of the cluster; must be one the"
                      " pinned Strimzi supports (0.47.0: 3.9.0, 3.9.1, 4.0.0).",
                      rule=rules.SEMVER)
    loki: str = spec("18.11.0", doc="Loki chart of grafana-community, where the OSS chart"
                     " lives since March 2026 (when monitoring.loki is on).",
                     rule=rules.SEMVER)
    alloy: str = spec("1.11.1", doc="Grafana Alloy chart, the log shipper for Loki (when"
                      " monitoring.loki is on).", rule=rules.SEMVER)
    sops: str = spec("3.8.1", doc="SOPS.", rule=rules.SEMVER)
    age: str = spec("1.1.1", doc="age.", rule=rules.SEMVER)
    helm: str = spec("4.1.4", doc="helm CLI the tasks run (inv tools.install installs it).",
                     rule=rules.SEMVER)
    kubectl: str = spec("1.33.9", doc="kubectl CLI the tasks run (inv tools.install installs"
                        " it); within one minor version of the cluster's (K3s 1.33).",
                        rule=rules.SEMVER)


@dataclass(frozen=True)
class Airgap:
    binary: str = spec(doc="Local path of the k3s binary of versions.k3s (from the"
                       " release's assets).", rule=rules.FILE_PATH)
    binary_sha256: str = spec(doc="Its sha256, from the release's sha256sum-<arch>.txt.",
                              rule=rules.SHA256)
    arch: Literal["amd64", "arm64"] = spec("amd64", doc="Architecture of the hosts.")
    images: str | None = spec(None, doc="Local path of k3s-airgap-images-<arch>.tar.zst"
                              " (optional: without it, images are pulled).",
                              rule=rules.FILE_PATH)
    images_sha256: str | None = spec(None, doc="Its sha256.", rule=rules.SHA256)


@dataclass(frozen=True)
class K3s:
    pod_cidr: str = spec("10.42.0.0/16", doc="Pod network (private: the firewall allows"
                         " everything from it).", rule=rules.CLUSTER_CIDR)
    service_cidr: str = spec("10.43.0.0/16", doc="Service (ClusterIP) network (private,"
                             " like pod_cidr).", rule=rules.CLUSTER_CIDR)
    tls_san: list[str] = spec(doc="Extra names/addresses for the API certificate (host"
                              " addresses and the domain are always included).",
                              rule=rules.ADDRESS, factory=list)
    data_dir: str = spec("/var/lib/rancher/k3s", doc="K3s data directory.",
                         rule=rules.DATA_DIR)
    traefik_http_nodeport: int = spec(32170, doc="Traefik HTTP NodePort.",
                                      rule=rules.NODE_PORT)
    traefik_https_nodeport: int = spec(31931, doc="Traefik HTTPS NodePort.",
                                       rule=rules.NODE_PORT)
    cluster_name: str = spec("vps", doc="The cluster's name: the operator's kubeconfig"
                             " context (and file ~/.kube/<cluster_name>.yaml).",
                             rule=rules.DNS_LABEL)
    api_access: Literal["tunnel", "direct"] = spec(
        "tunnel", doc="How kubectl and helm reach the API: through an SSH tunnel to the first"
        " server's 127.0.0.1:6443 (6443 never needs to be reachable), or directly at"
        " https://<address>:6443 (open to operators only).")
    kubeconfig: str | None = spec(
        None, doc="Where k3s.install writes the operator's kubeconfig (mode 0600; never"
        " ~/.kube/config). Default: ~/.kube/<cluster_name>.yaml.", rule=rules.FILE_PATH)
    airgap: Airgap | None = spec(
        None, doc="Install K3s from local files uploaded over SFTP instead of downloading"
        " it on the hosts from GitHub (each file checked against its sha256).")
    ready_seconds: int = spec(300, doc="How long k3s.install waits for a node to be Ready"
                              " after (re)starting K3s.", rule=rules.int_range(30, 3600))


@dataclass(frozen=True)
class Certs:
    issuer: Literal["letsencrypt-staging", "letsencrypt-prod"] = spec(
        "letsencrypt-prod", doc="ClusterIssuer used by our Ingresses.")


@dataclass(frozen=True)
class Gitops:
    repository: str = spec("ssh://git@github.com/team-mercurious/k3s-gitops",
                           doc="Git repository Flux reconciles.", rule=rules.GIT_URL)
    branch: str = spec("main", doc="Branch Flux follows.", rule=rules.BRANCH)
    path: str = spec("./clusters/vps", doc="Path in the repository.", rule=rules.REPO_PATH)
    interval: str = spec("1m", doc="How often Flux polls the repository.",
                         rule=rules.DURATION)
    reconcile_interval: str = spec("10m", doc="How often Flux re-applies the path.",
                                   rule=rules.DURATION)


@dataclass(frozen=True)
class Monitoring:
    retention: str = spec("7d", doc="Prometheus retention.", rule=rules.DURATION)
    prometheus_storage: str = spec("10Gi", doc="Prometheus PVC size.", rule=rules.QUANTITY)
    grafana_storage: str = spec("5Gi", doc="Grafana PVC size.", rule=rules.QUANTITY)
    loki: bool = spec(False, doc="Also install Loki and add it as a Grafana data source.")
    loki_storage: str = spec("10Gi", doc="Loki PVC size (not in the spec: Loki is optional).",
                             rule=rules.QUANTITY)


@dataclass(frozen=True)
class Kafka:
    namespace: str = spec("kafka", doc="Namespace of Strimzi and the cluster.",
                          rule=rules.DNS_LABEL)
    cluster: str = spec("my-cluster", doc="Kafka cluster name.", rule=rules.DNS_LABEL)
    storage: str = spec("10Gi", doc="Kafka data PVC size.", rule=rules.QUANTITY)
    topics: list[str] = spec(doc="Topics to create.", factory=lambda: list(SPEC_TOPICS),
                             rule=rules.pattern("a topic name", r"[a-z0-9._-]{1,249}"))
    partitions: int = spec(3, doc="Partitions per topic.", rule=rules.int_range(1, 1000))
    user: str = spec("app-client", doc="KafkaUser the applications authenticate as.",
                     rule=rules.DNS_LABEL)


@dataclass(frozen=True)
class App:
    image: str | None = spec(None, doc="Image with a pinned tag or digest (never :latest).",
                             rule=rules.IMAGE)
    replicas: int = spec(1, doc="Replicas (minimum when autoscaled).",
                         rule=rules.int_range(1, 50))


@dataclass(frozen=True)
class Gateway(App):
    # Its own class so that a section giving only the image keeps the spec's 2 replicas.
    replicas: int = spec(2, doc="Replicas: the HPA's minimum (spec: 2).",
                         rule=rules.int_range(1, 50))


@dataclass(frozen=True)
class Apps:
    namespace: str = spec("app", doc="Namespace of the applications.", rule=rules.DNS_LABEL)
    host: str | None = spec(None, doc="Public host name of the API gateway (default:"
                            " api.<domain>).", rule=rules.DOMAIN)
    api_gateway: Gateway = spec(Gateway(), doc="The API gateway (port 3000, HPA).")
    api_generation: App = spec(App(), doc="Itinerary generation service.")
    api_enrichment: App = spec(App(), doc="Data enrichment service.")


@dataclass(frozen=True)
class Secrets:
    age_recipients: list[str] = spec(doc="age public keys that can decrypt secrets/.",
                                     rule=rules.AGE_RECIPIENT,
                                     factory=lambda: [SPEC_AGE_RECIPIENT])
    age_key_file: str | None = spec(
        None, doc="The operator's age private key, which sops decrypts with (passed to it"
        " as SOPS_AGE_KEY_FILE); inv secrets.init creates it (mode 0600) when missing."
        " Relative paths are relative to the inventory file, ~ is expanded; never inside"
        " this repository. Default: $SOPS_AGE_KEY_FILE, else sops' default"
        " ~/.config/sops/age/keys.txt ($XDG_CONFIG_HOME/sops/age/keys.txt).",
        rule=rules.FILE_PATH)


@dataclass(frozen=True)
class Backup:
    keep: int = spec(7, doc="How many backups inv backup.create keeps per cluster (the"
                     " newest; older ones are removed after a backup succeeds).",
                     rule=rules.int_range(1, 1000))
    dir: str = spec("backups", doc="Where backups are written, as <dir>/<cluster_name>/"
                    "<UTC time>.tar.age (age-encrypted for secrets.age_recipients; folder"
                    " 0700, files 0600). Relative paths are relative to the inventory"
                    " file, ~ is expanded.", rule=rules.FILE_PATH)


@dataclass(frozen=True)
class Inventory:
    domain: str = spec(doc="Public domain of the platform.", rule=rules.DOMAIN)
    acme_email: str = spec(doc="Let's Encrypt account e-mail.", rule=rules.EMAIL)
    operators: list[str] = spec(doc="CIDRs of operators: allowed to the Kubernetes API,"
                                " never rate-limited or banned on SSH; at most a /16 (IPv4) or /48"
                                " (IPv6).", rule=rules.OPERATOR_CIDR)
    hosts: list[Host] = spec(doc="The machines. The first server is the control plane.")
    versions: Versions = spec(Versions(), doc="Pinned versions.")
    host: HostLayer = spec(HostLayer(), doc="Host hardening settings.")
    k3s: K3s = spec(K3s(), doc="K3s settings.")
    certs: Certs = spec(Certs(), doc="TLS certificates.")
    gitops: Gitops = spec(Gitops(), doc="Flux GitOps source.")
    monitoring: Monitoring = spec(Monitoring(), doc="Prometheus, Grafana, Loki.")
    kafka: Kafka = spec(Kafka(), doc="Strimzi Kafka.")
    apps: Apps = spec(Apps(), doc="The applications.")
    secrets: Secrets = spec(Secrets(), doc="SOPS/age.")
    backup: Backup = spec(Backup(), doc="inv backup.create / backup.restore.")

    @property
    def servers(self) -> list[Host]:
        return [h for h in self.hosts if h.role == "server"]

    @property
    def api_host(self) -> str:
        return self.apps.host or f"api.{self.domain}"
