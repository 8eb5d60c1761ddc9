"""apps.diagnose on recorded outputs: `kubectl get pods/events -o json`, the references'
go-template and `logs --previous` as kubectl prints them (tests/unit/fixtures/diagnose/,
each case's SOURCES.md says where its shapes come from), one likely cause per failure
kind, then the evidence, as the operator reads it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tasks.apps.diagnose import logs, reads, refs, report
from tasks.apps.diagnose.causes import Context, no_pod
from tasks.apps.diagnose.pods import events as parse_events
from tasks.cluster.steps import read
from tasks.engine.errors import UserError
from tasks.engine.facts import Facts, Raw
from tests.unit.diagnose_cases import (
    NS,
    TOOLS,
    case_findings,
    edited_pods,
    findings,
    load,
    log_outputs,
    outputs,
    with_healthy,
)


@pytest.mark.parametrize(("case", "app", "cause"), [
    ("crashloop-exit-1", "api-generation",
     "the application exits with an error (exit code 1): [cause]: KafkaJSConnectionError:"
     " Connection error: getaddrinfo ENOTFOUND my-cluster-kafka-bootstrap.kafka.svc"),
    ("oomkilled", "api-enrichment",
     "it runs out of memory: it reached its memory limit of 384Mi and was killed"
     " (OOMKilled, exit code 137): raise resources.limits.memory of api-enrichment in"
     " helm-values/apps.yaml, or find what uses the memory"),
    ("image-pull-denied", "api-gateway",
     "the registry refuses image ghcr.io/team-mercurious/api-gateway:1.0.0 (401"
     " Unauthorized), and the image pull Secret ghcr-pull does not exist: apply it with inv"
     " apps.deploy (from secrets/secret-registry.sops.yaml; inv secrets.init creates the"
     " file)"),
    ("image-not-found", "api-generation",
     "image ghcr.io/team-mercurious/api-generation:1.0.1 does not exist in the registry (not"
     " found): check the tag in apps.api_generation.image of the inventory"),
    ("missing-secret-key", "api-gateway",
     "Secret app-config has no key REDIS_URL, which env REDIS_URL of container api-gateway"
     " needs: set it with inv secrets.edit secret-app, then apply it with inv apps.deploy"),
    ("missing-secret", "api-generation",
     "Secret kafka-app-client does not exist, which env KAFKA_PASSWORD of container"
     " api-generation needs: apply it with inv apps.deploy (from"
     " secrets/secret-kafka.sops.yaml; inv secrets.init creates the file)"),
    ("missing-configmap", "api-gateway",
     "ConfigMap api-gateway-settings does not exist, which envFrom of container api-gateway"
     " needs: create it in the namespace"),
    ("probe-startup-404", "api-gateway",
     "its startup probe fails: GET / on port http (3000) answers 404, so the kubelet"
     " restarts it: make the app answer it, or point the probe at what the app serves"
     " (probes in helm-values/apps.yaml)"),
    ("unschedulable", "api-gateway",
     "no node has enough free memory for it (it requests memory 256Mi): lower"
     " resources.requests in helm-values/apps.yaml, or free or add capacity"),
    ("pvc-pending", "api-enrichment",
     "its PersistentVolumeClaim enrichment-cache stays Pending: the storage class fast does"
     ' not exist (storageclass.storage.k8s.io "fast" not found): use local-path, the class'
     " K3s provides"),
])
def test_each_failure_kind_has_one_cause_in_plain_words(case: str, app: str, cause: str
                                                         ) -> None:
    (finding,), examined = case_findings(case, app)
    assert (finding.app, finding.cause, finding.ok, examined) == (app, cause, False, 1)


CRASHLOOP = """\
app/api-generation-6d9c7b5f4-q8x2m (api-generation): the application exits with an error \
(exit code 1): [cause]: KafkaJSConnectionError: Connection error: getaddrinfo ENOTFOUND \
my-cluster-kafka-bootstrap.kafka.svc
  container api-generation: phase Running, waiting CrashLoopBackOff (back-off 5m0s \
restarting failed container=api-generation pod=api-generation-6d9c7b5f4-q8x2m_app(8f14e45f-\
ceea-467a-9575-0c3d1f6a2b91)), 12 restarts
  last termination: Error, exit code 1 at 2026-01-05T09:42:03Z
  event Warning BackOff x48, last 2026-01-05T09:44:31Z: Back-off restarting failed \
container api-generation in pod api-generation-6d9c7b5f4-q8x2m_app(8f14e45f-ceea-467a-9575-\
0c3d1f6a2b91)
  event Normal Started x13, last 2026-01-05T09:41:49Z: Started container api-generation
  event Normal Pulled x13, last 2026-01-05T09:41:48Z: Container image \
"ghcr.io/team-mercurious/api-generation:1.0.0" already present on machine
  event Normal Created x13, last 2026-01-05T09:41:48Z: Created container: api-generation
  previous log (error lines first, then the last lines):
    ! {"level":"ERROR","timestamp":"2026-01-05T09:42:02.981Z","logger":"kafkajs","message":\
"[Consumer] Crash: KafkaJSNumberOfRetriesExceeded: Connection error: getaddrinfo ENOTFOUND \
my-cluster-kafka-bootstr...
    !         const error = new KafkaJSConnectionError(`Connection error: ${e.message}`, {
    ! KafkaJSNonRetriableError
    !   Caused by: KafkaJSConnectionError: Connection error: getaddrinfo ENOTFOUND \
my-cluster-kafka-bootstrap.kafka.svc
    !   [cause]: KafkaJSConnectionError: Connection error: getaddrinfo ENOTFOUND \
my-cluster-kafka-bootstrap.kafka.svc
    |       at emitErrorCloseNT (node:internal/streams/destroy:128:3)
    |       at process.processTicksAndRejections (node:internal/process/task_queues:82:21) {
    |     retriable: true,
    |     helpUrl: undefined,
    |     broker: 'my-cluster-kafka-bootstrap.kafka.svc:9092',
    |     code: 'ENOTFOUND',
    |     [cause]: undefined
    |   }
    | }
    | Node.js v20.18.1

needs attention: api-generation-6d9c7b5f4-q8x2m (4 pods of ours in namespace app examined)"""


def test_a_crash_loop_reads_cause_first_then_the_evidence() -> None:
    found, examined = findings(with_healthy("crashloop-exit-1"), None,
                               log_outputs("crashloop-exit-1"))
    assert "\n".join(report.text(found, NS, examined)) == CRASHLOOP


def test_every_pod_ready_is_said_in_one_line_and_json_is_empty() -> None:
    found, examined = case_findings("healthy")
    assert report.text(found, NS, examined) == [
        "every pod of ours in namespace app is Ready (4 pods)"]
    assert report.as_json(found) == "[]"


def test_a_named_ready_app_is_examined_and_said_fine() -> None:
    found, examined = case_findings("healthy", "api-gateway")
    assert [(f.pod, f.cause, f.ok) for f in found] == [
        ("api-gateway-7c9d6b8f4d-a1b2c", "Ready: nothing wrong found", True),
        ("api-gateway-7c9d6b8f4d-d3e4f", "Ready: nothing wrong found", True)]
    assert report.text(found, NS, examined)[-1] == \
        "every pod of ours in namespace app is Ready (2 pods)"


def test_json_is_pod_container_cause_evidence() -> None:
    (finding,), _ = case_findings("missing-secret-key", "api-gateway")
    assert json.loads(report.as_json([finding])) == [{
        "pod": "api-gateway-7c9d6b8f4d-r2d8v", "app": "api-gateway",
        "container": "api-gateway",
        "cause": "Secret app-config has no key REDIS_URL, which env REDIS_URL of container"
                 " api-gateway needs: set it with inv secrets.edit secret-app, then apply it"
                 " with inv apps.deploy",
        "ok": False,
        "evidence": {
            "phase": "Pending", "ready": False, "restarts": 0,
            "waiting": {"reason": "CreateContainerConfigError",
                        "message": "couldn't find key REDIS_URL in Secret app/app-config"},
            "events": [
                {"type": "Warning", "reason": "Failed", "count": 9,
                 "last_seen": "2026-01-05T09:01:55Z",
                 "message": "Error: couldn't find key REDIS_URL in Secret app/app-config"},
                {"type": "Normal", "reason": "Pulled", "count": 9,
                 "last_seen": "2026-01-05T09:01:55Z",
                 "message": 'Container image "ghcr.io/team-mercurious/api-gateway:1.0.0"'
                            " already present on machine"},
                {"type": "Normal", "reason": "Scheduled", "count": 1,
                 "last_seen": "2026-01-05T09:00:00.412815Z",
                 "message": "Successfully assigned app/api-gateway-7c9d6b8f4d-r2d8v to vps1"}],
            "references": ["Secret app-config has no key REDIS_URL (env REDIS_URL of"
                           " container api-gateway)"]}}]


def test_apps_without_any_pod_are_findings_too() -> None:
    found, _ = case_findings("oomkilled")
    assert [(f.pod, f.app, f.cause) for f in found[1:]] == [
        ("-", "api-gateway", "no pod of api-gateway exists: it is not deployed yet (inv"
                             " apps.deploy), or scaled to zero"),
        ("-", "api-generation", "no pod of api-generation exists: it is not deployed yet"
                                " (inv apps.deploy), or scaled to zero")]
    assert report.block(found[1], NS)[0] == (
        "app api-gateway in namespace app: no pod of api-gateway exists: it is not deployed"
        " yet (inv apps.deploy), or scaled to zero")


def test_a_replicaset_that_cannot_create_pods_says_why() -> None:
    # kube-controller-manager's FailedCreate on the ReplicaSet when admission refuses the
    # pod (the PodSecurity admission's "violates PodSecurity" wording)
    event = {"apiVersion": "v1", "count": 6, "eventTime": None,
             "firstTimestamp": "2026-01-05T09:00:00Z", "lastTimestamp": "2026-01-05T09:02:40Z",
             "involvedObject": {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                "name": "api-gateway-7c9d6b8f4d", "namespace": "app"},
             "kind": "Event", "metadata": {"name": "api-gateway-7c9d6b8f4d.1", "namespace": "app"},
             "message": 'Error creating: pods "api-gateway-7c9d6b8f4d-4xw2p" is forbidden:'
                        ' violates PodSecurity "restricted:latest": runAsNonRoot != true',
             "reason": "FailedCreate", "source": {"component": "replicaset-controller"},
             "type": "Warning"}
    ctx = Context(parse_events({"items": [event]}), refs.Objects())
    assert no_pod("api-gateway", ctx).cause == (
        'its ReplicaSet cannot create pods: Error creating: pods "api-gateway-7c9d6b8f4d-4xw2p"'
        ' is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true')


def _last_exit(code: int, reason: str = "Error") -> Any:
    def change(items: list[dict[str, Any]]) -> None:
        last = items[0]["status"]["containerStatuses"][0]["lastState"]["terminated"]
        last.update(exitCode=code, reason=reason)
    return change


@pytest.mark.parametrize(("code", "reason", "cause"), [
    (0, "Completed", "it exits on its own (exit code 0) and is started again: its command"
                     " must keep running"),
    (126, "Error", "its command cannot be executed (exit code 126: not executable, or"
                   " permission denied)"),
    (127, "Error", "its command is not found in the image (exit code 127)"),
    (134, "Error", 'it aborts (SIGABRT, exit code 134; for Node.js usually "JavaScript heap'
                   ' out of memory")'),
    (137, "Error", "it is killed with SIGKILL (exit code 137) although not OOMKilled: a"
                   " failed liveness probe, or memory pressure on the node"),
    (139, "Error", "it crashes with a segmentation fault (SIGSEGV, exit code 139)"),
    (143, "Error", "it is stopped with SIGTERM (exit code 143): the kubelet restarts it,"
                   " usually after a failed liveness or startup probe"),
    (130, "Error", "it is killed by signal 2 (exit code 130)"),
    (3, "Error", "it exits with code 3"),
])
def test_exit_codes_say_their_usual_meaning(code: int, reason: str, cause: str) -> None:
    out = edited_pods("crashloop-exit-1", _last_exit(code, reason))
    (finding,), _ = findings(out, "api-generation", log_outputs("crashloop-exit-1"))
    assert finding.cause == cause


def test_exit_1_without_a_readable_log_falls_back_to_the_termination_message() -> None:
    # FallbackToLogsOnError (charts/apps) kept the log's tail in lastState.terminated
    (finding,), _ = findings(outputs("crashloop-exit-1"), "api-generation", logs={})
    assert finding.cause.endswith("[cause]: KafkaJSConnectionError: Connection error:"
                                  " getaddrinfo ENOTFOUND my-cluster-kafka-bootstrap.kafka.svc")
    assert finding.evidence["logs"]["source"] == "termination message"
    assert report.block(finding, NS)[7] == \
        "  termination message (error lines first, then the last lines):"


def test_no_log_and_no_termination_message_is_said() -> None:
    def drop_message(items: list[dict[str, Any]]) -> None:
        del items[0]["status"]["containerStatuses"][0]["lastState"]["terminated"]["message"]
    (finding,), _ = findings(edited_pods("crashloop-exit-1", drop_message), "api-generation")
    assert finding.cause == \
        "the application exits with an error (exit code 1): see its last log lines"
    assert report.block(finding, NS)[-1] == (
        '  previous log: unavailable (Error from server (BadRequest): previous terminated'
        ' container "api-generation" in pod "api-generation-6d9c7b5f4-q8x2m" not found)')


def _probe_events(message: str) -> dict[str, str]:
    out = outputs("probe-startup-404")
    items = load("probe-startup-404", "events.json")["items"]
    for e in items:
        if e["reason"] == "Unhealthy":
            e["message"] = message
    out["events"] = json.dumps({"items": items})
    return out


@pytest.mark.parametrize(("message", "cause"), [
    # the prober's texts (kubelet prober): connection refused and timeout as recorded in
    # vllm-project/aibrix#1054 and prometheus-operator/kube-prometheus#1674
    ('Liveness probe failed: Get "http://10.42.0.17:3000/": dial tcp 10.42.0.17:3000:'
     " connect: connection refused",
     "its liveness probe fails: nothing listens for GET / on port http (3000) (connection"
     " refused), so the kubelet restarts it: make the app answer it, or point the probe at"
     " what the app serves (probes in helm-values/apps.yaml)"),
    ('Liveness probe failed: Get "http://10.42.0.17:3000/": context deadline exceeded'
     " (Client.Timeout exceeded while awaiting headers)",
     "its liveness probe fails: GET / on port http (3000) gets no answer within 5s, so the"
     " kubelet restarts it: make the app answer it, or point the probe at what the app"
     " serves (probes in helm-values/apps.yaml)"),
    ("Readiness probe failed: HTTP probe failed with statuscode: 503",
     "its readiness probe fails: GET / on port http (3000) answers 503, so it gets no"
     " traffic: make the app answer it, or point the probe at what the app serves (probes"
     " in helm-values/apps.yaml)"),
])
def test_probe_failures_name_the_probe_path_port_and_answer(message: str, cause: str) -> None:
    (finding,), _ = findings(_probe_events(message), "api-gateway",
                             log_outputs("probe-startup-404"))
    assert finding.cause == cause


def test_a_taint_nobody_tolerates() -> None:
    message = ("0/1 nodes are available: 1 node(s) had untolerated taint"
               " {node.kubernetes.io/disk-pressure: }. preemption: 0/1 nodes are available:"
               " 1 Preemption is not helpful for scheduling..")

    def taint(items: list[dict[str, Any]]) -> None:
        items[0]["status"]["conditions"][0]["message"] = message
    out = edited_pods("unschedulable", taint)
    out["events"] = json.dumps({"items": []})
    (finding,), _ = findings(out, "api-gateway")
    assert finding.cause == (
        "no node accepts it: they carry the taint {node.kubernetes.io/disk-pressure: }, which"
        " it does not tolerate (kubectl describe node says why the taint is there)")


def test_references_that_do_not_resolve() -> None:
    spec = {
        "imagePullSecrets": [{"name": "ghcr-pull"}, {"name": "other-registry"}],
        "containers": [{"name": "c", "env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "app-config", "key": "A"}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "B",
                                                         "optional": True}}},
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "C"}}}],
            "envFrom": [{"secretRef": {"name": "gone"}}]}],
        "volumes": [
            {"name": "certs", "secret": {"secretName": "app-config", "items": [{"key": "tls.crt",
                                                                              "path": "t"}]}},
            {"name": "cfg", "projected": {"sources": [{"configMap": {"name": "absent"}}]}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}}],
    }
    found = refs.parse("Secret\tapp-config\tMONGODB_URI REDIS_URL \nSecret\tghcr-pull\t"
                       ".dockerconfigjson \nConfigMap\tsettings\tD \n"
                       "PersistentVolumeClaim\tdata\tPending\t\n"
                       "PersistentVolumeClaim\tok\tBound\tlocal-path\n")
    assert [p.text() for p in refs.problems(spec, found)] == [
        "Secret app-config has no key A (env A of container c)",
        "ConfigMap settings has no key C (env C of container c)",
        "Secret gone does not exist (envFrom of container c)",
        "Secret app-config has no key tls.crt (volume certs)",
        "ConfigMap absent does not exist (volume cfg)",
        "PersistentVolumeClaim data is Pending (not Bound, no storage class) (volume data)",
        "PersistentVolumeClaim cache does not exist (volume cache)",
        "image pull Secret other-registry does not exist"]


def test_secrets_are_known_by_their_file() -> None:
    assert {k: v for k, v in reads.secret_files().items()
            if k in ("app-config", "ghcr-pull", "kafka-app-client")} == {
        "app-config": "secret-app", "ghcr-pull": "secret-registry",
        "kafka-app-client": "secret-kafka"}


def test_log_lines_are_escaped_capped_and_error_lines_come_first() -> None:
    log = ("\x1b[32m[Nest] 1  - LOG [NestFactory] Starting\x1b[39m\n"
           "\x1b]0;owned\x07title set\n"  # an OSC escape: shown escaped, never sent
           "fake line\r\nerror: boom " + "x" * 400 + "\n"
           "    at Socket.onError (/app/x.js:1:2)\n"
           "Error: connect ECONNREFUSED 10.43.0.10:9092\n")
    lines = logs.select(log)
    assert lines.errors == ("error: boom " + "x" * 288, "Error: connect ECONNREFUSED"
                                                        " 10.43.0.10:9092")
    assert lines.tail == ("[Nest] 1  - LOG [NestFactory] Starting", "\x1b]0;owned\x07title set",
                          "fake line", "    at Socket.onError (/app/x.js:1:2)")
    assert lines.telling == "Error: connect ECONNREFUSED 10.43.0.10:9092"
    (finding,), _ = findings(outputs("crashloop-exit-1"), "api-generation",
                             {"api-generation": log})
    shown = report.block(finding, NS)
    assert "    | \\x1b]0;owned\\x07title set" in shown
    assert "    ! error: boom " + "x" * 188 + "..." in shown
    assert all("\x1b" not in line and "\r" not in line for line in shown)


@pytest.mark.parametrize(("stderr", "line"), [
    ("E0105 09:00:07.123456    1234 memcache.go:265] couldn't get current server API group"
     " list\nThe connection to the server 127.0.0.1:39113 was refused - did you specify the"
     " right host or port?\n",
     "reading the pods of namespace app: the Kubernetes API is unreachable (The connection to"
     " the server 127.0.0.1:39113 was refused - did you specify the right host or port?): is"
     " K3s running on the first server, and the SSH tunnel up?"),
    ("error: You must be logged in to the server (the server has asked for the client to"
     " provide credentials)\n",
     "reading the pods of namespace app: the API refused our credentials (Unauthorized): is"
     " the kubeconfig from this cluster? Re-run inv k3s.install to fetch it again"),
    ('Error from server (Forbidden): pods is forbidden: User "x" cannot list resource "pods"'
     ' in API group "" in the namespace "app"\n',
     'reading the pods of namespace app: the API said Forbidden: Error from server'
     ' (Forbidden): pods is forbidden: User "x" cannot list resource "pods" in API group ""'
     ' in the namespace "app"'),
])
def test_a_failed_read_is_one_error_line_never_all_healthy(stderr: str, line: str) -> None:
    fact = reads.pods_fact(TOOLS, NS)
    with pytest.raises(UserError) as info:
        read(Facts({fact.key: Raw("", 1, stderr)}), fact)
    assert info.value.lines == [line]


def test_an_unknown_name_is_refused_with_what_exists() -> None:
    found = reads.pods_fact(TOOLS, NS).parse(Raw(outputs("healthy")["pods"], 0))
    with pytest.raises(UserError) as info:
        reads.choose(found, "api-gatway", NS)
    assert str(info.value) == (
        "no app or pod of ours named api-gatway in namespace app (apps: api-gateway,"
        " api-generation, api-enrichment; pods: api-enrichment-5f7b9c8d6-k7m8n,"
        " api-gateway-7c9d6b8f4d-a1b2c, api-gateway-7c9d6b8f4d-d3e4f,"
        " api-generation-6d9c7b5f4-g5h6j)")


def test_the_reads_are_the_documented_command_lines() -> None:
    assert reads.pods_fact(TOOLS, NS).command == (
        "/opt/bin/kubectl get pods -n app -l app.kubernetes.io/part-of=k3s-vps-platform,"
        "app.kubernetes.io/instance=apps -o json")
    assert reads.events_fact(TOOLS, NS).command == "/opt/bin/kubectl get events -n app -o json"
    assert reads.objects_fact(TOOLS, NS).command.startswith(
        "/opt/bin/kubectl get secrets,configmaps,persistentvolumeclaims -n app"
        " -o 'go-template={{range .items}}")
    assert reads.log_fact(TOOLS, NS, "p", "c").command == (
        "/opt/bin/kubectl logs p -n app -c c --previous --tail=50 --limit-bytes=65536")
