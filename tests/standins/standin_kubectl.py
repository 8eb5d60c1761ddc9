"""STAND-IN for ``kubectl``, for tests only: run by ``tests/standins/kubectl``.

It answers the command lines the cluster steps build (tasks/cluster/kube.py, steps.py)
from the stand-in cluster in ``$STACK_STANDIN_STATE`` (see standin_common.py), printing
what kubectl 1.33 prints, with its exit codes; anything else exits 2 with
``stand-in: unsupported: ...``. The texts were taken from the real kubectl 1.33.9
(``.cache/bin/kubectl-v33``) run against a closed port and against a minimal local HTTP
API, and checked against public reports (each quoted where it is used):

- ``diff --server-side --field-manager=M -f -``: writes each object as it is (LIVE) and
  as it would be after the apply (MERGED) into two temporary folders, one file each
  named ``<group>.<version>.<Kind>.<namespace>.<name>`` (kubectl's diff.go
  ``InfoObject.Name``), managedFields left out, Secret data masked (``***``, kubectl's
  ``Masker``); then runs ``$KUBECTL_EXTERNAL_DIFF`` split on spaces, keeping only the
  arguments matching ``^[a-zA-Z0-9-=]+$`` and putting them after the two folders
  (kubectl's ``DiffProgram.getCommand``), passes its output through and exits with its
  code (0 or 1; above 1: ``error: failed to run ...``, exit 2);
- ``apply --server-side --field-manager=M -f -``: stores the objects in order (a field
  another manager owns with another value is a conflict, as the API server says it;
  ``--force-conflicts``, on diff or apply, takes such fields over);
- ``wait --for=condition=C|jsonpath=...=V|create --timeout=Ns TYPE/NAME [-n NS]``,
  ``rollout status``, ``annotate [--overwrite]``, ``create --dry-run=server -f -``,
  ``version -o json``, ``get TYPE[,TYPE...] [NAME] [-n NS | -A] -o json`` (several types:
  one ``List`` of all their items, each with its own kind, as the real 1.33.9 prints
  ``get persistentvolumeclaims,events -o json``);
- ``get --raw /api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH``: the API server's
  service proxy; the body the test configured (``service_proxy``), printed as it came
  (no newline added), or the API server's Status as the real kubectl 1.33.9 printed it
  against a local API answering 404 and 503: ``Error from server (NotFound): services
  "x" not found`` (no such Service), ``Error from server (ServiceUnavailable): no
  endpoints available for service "x"`` (a Service injected not ready), exit 1.
- ``get --raw /api/v1/nodes/NODE/proxy/PATH``: the node proxy to a kubelet (``inv
  status`` reads ``stats/summary``); the body configured (``node_proxy``), or the API's
  ``Error from server (NotFound): nodes "x" not found`` when there is no such Node.
- ``get`` with ``-l k=v,...`` and the one go-template of apps.diagnose,
  :data:`REFS_TEMPLATE`; ``logs POD -n NS -c C --previous --tail=N [--limit-bytes=M]``.

Waits never really wait: a condition that is not met is reported as kubectl reports a
timeout, at once.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from standin_common import (
    Api,
    Kind,
    State,
    Streams,
    Unsupported,
    api,
    conflict_message,
    go_json,
    klog_error,
    klog_line,
    normalize,
    parse_flags,
    run_standin,
    seconds,
    server_side_apply,
    update_fields,
    without_managed_fields,
)

CONFLICT_HELP = """Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the `--force-conflicts` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts"""
# ^ kubectl apply's text after an SSA conflict, as printed in kvaps/helm-ensurecrds#2 and
#   prometheus-community/helm-charts#1668 (kubectl 1.2x-1.3x).

VALID_DIFF_ARG = re.compile(r"^[a-zA-Z0-9-=]+$")  # kubectl 1.33 diff.go getCommand


class Fail(Exception):
    """kubectl printed ``text`` on stderr and exited ``rc``."""

    def __init__(self, text: str, rc: int = 1) -> None:
        super().__init__(text)
        self.text, self.rc = text, rc


# Reaching the API ------------------------------------------------------------------------

def check_api(state: State, command: str) -> Api:
    """Raise what kubectl 1.33.9 prints when the API cannot be used (captured from the
    real binary against a closed port and against an API answering 401):

    - diff: a klog line, then ``error: unable to recognize "STDIN": <cause>``, exit 2;
    - apply/create: ``error: error validating "STDIN": error validating data: failed to
      download openapi: <cause>; if you choose ...``, exit 1;
    - the others: klog lines, then ``The connection to the server HOST:PORT was refused -
      did you specify the right host or port?`` (kubernetes/kubectl#1414 shows the same
      line), or ``error: You must be logged in to the server (the server has asked for the
      client to provide credentials)`` (infrahq/infra#1181, kubernetes/minikube#8945),
      exit 1."""
    where = api(state)
    if where.failure is None:
        return where
    discovery = where.cause("/api?timeout=32s")
    klog = klog_error("couldn't get current server API group list: "
                      + discovery.replace('"', '\\"'))
    if command == "diff":
        raise Fail(f'{klog}\nerror: unable to recognize "STDIN": {discovery}', 2)
    if command in ("apply", "create"):
        raise Fail('error: error validating "STDIN": error validating data: failed to download'
                   f" openapi: {where.cause('/openapi/v2?timeout=32s')}; if you choose to"
                   " ignore these errors, turn validation off with --validate=false")
    last = (f"The connection to the server {where.hostport} was refused - did you specify"
            " the right host or port?" if where.failure == "unreachable" else
            "error: You must be logged in to the server (the server has asked for the client"
            " to provide credentials)")
    raise Fail("\n".join([klog] * 4 + [last]))


# Manifests ------------------------------------------------------------------------------

def documents(stdin: bytes) -> list[dict[str, Any]]:
    try:
        docs = [d for d in yaml.safe_load_all(stdin.decode()) if d is not None]
    except yaml.YAMLError as exc:
        raise Fail(f'error: error parsing STDIN: error converting YAML to JSON: {exc}') from None
    out: list[dict[str, Any]] = []
    for doc in docs:
        if not isinstance(doc, dict):
            raise Unsupported("a YAML document that is not a mapping")
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out += doc["items"]
        else:
            out.append(doc)
    return out


def mapping_error(doc: dict[str, Any], namespace: str) -> str:
    """kubectl's text for a kind the API does not serve (as the real 1.33.9 printed it):
    ``resource mapping not found for name: "x" namespace: "" from "STDIN": no matches for
    kind "ClusterIssuer" in version "cert-manager.io/v1"`` + ``ensure CRDs are installed
    first``."""
    meta = doc.get("metadata") or {}
    return (f'resource mapping not found for name: "{meta.get("name", "")}" namespace:'
            f' "{namespace}" from "STDIN": no matches for kind "{doc.get("kind", "")}" in'
            f' version "{doc.get("apiVersion", "")}"\nensure CRDs are installed first')


def locate(state: State, kinds: list[Kind], doc: dict[str, Any], default_ns: str
           ) -> tuple[Kind | None, str, str]:
    """(kind or None when not served, namespace, name) of a manifest."""
    if not doc.get("apiVersion") or not doc.get("kind") or \
            not (doc.get("metadata") or {}).get("name"):
        raise Fail('error: error validating "STDIN": error validating data: [apiVersion, kind'
                   " or metadata.name not set]; if you choose to ignore these errors, turn"
                   " validation off with --validate=false")
    group, _, version = str(doc["apiVersion"]).rpartition("/")
    kind = next((k for k in kinds if k.group == group and k.kind == doc["kind"]
                 and version in k.versions), None)
    meta = doc["metadata"]
    if kind is None:  # kubectl cannot tell whether it is namespaced: the manifest's
        return None, str(meta.get("namespace") or ""), str(meta["name"])
    namespace = str(meta.get("namespace") or default_ns) if kind.namespaced else ""
    return kind, namespace, str(meta["name"])


def not_found(kind: Kind, name: str) -> str:
    # the API's NotFound message, as kubectl prints it: `Error from server (NotFound):
    # deployments.apps "x" not found` (kubectl 1.33.9 on `get namespace nope`)
    return f'Error from server (NotFound): {kind.resource} "{name}" not found'


def ns_not_found(namespace: str, creating: bool = False) -> str:
    # kubectl 1.33.9 (real, against an API answering 404): diff and apply print
    # `Error from server (NotFound): namespaces "x" not found`; create adds its source
    where = 'error when creating "STDIN": ' if creating else ""
    return f'Error from server (NotFound): {where}namespaces "{namespace}" not found'


def print_errors(errors: list[str]) -> str:
    # one error: "error: " prefixed unless it is the API's; several: one line each, as
    # they come (kubectl 1.33.9's output for create with two failing objects)
    if len(errors) == 1:
        e = errors[0]
        return e if e.startswith(("Error from server", "error: ")) else f"error: {e}"
    return "\n".join(errors)


# diff ------------------------------------------------------------------------------------

def masked(live: dict[str, Any] | None, merged: dict[str, Any] | None
           ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """kubectl's Masker: Secret data values as ``***``, ``*** (before)``/``*** (after)``
    where they differ (kubectl diff.go, 1.2x onwards)."""
    live, merged = copy.deepcopy(live), copy.deepcopy(merged)
    before = (live or {}).get("data") if isinstance((live or {}).get("data"), dict) else None
    after = (merged or {}).get("data") if isinstance((merged or {}).get("data"), dict) else None
    before, after = before or {}, after or {}
    for key in list(before):
        if key in after:
            if before[key] != after[key]:
                before[key], after[key] = "*** (before)", "*** (after)"
                continue
            after[key] = "***"
        before[key] = "***"
    for key in after:
        if key not in before:
            after[key] = "***"
    if live is not None and "data" in live:
        live["data"] = before
    if merged is not None and "data" in merged:
        merged["data"] = after
    return live, merged


def as_file(obj: dict[str, Any] | None, secret: bool) -> str:
    # kubectl prints nothing for a missing object, "null" for a masked missing Secret
    # (both seen in the real kubectl 1.33.9's LIVE folder)
    if obj is None:
        return "null\n" if secret else ""
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, allow_unicode=True)


def cmd_diff(state: State, flags: dict[str, str], streams: Streams) -> int:
    if flags.get("server-side") != "true" or flags.get("filename") != "-":
        raise Unsupported("diff without --server-side -f -")
    manager = flags.get("field-manager", "kubectl")
    docs = documents(streams.stdin())
    check_api(state, "diff")
    kinds = state.kinds()
    live_dir = Path(tempfile.mkdtemp(prefix="LIVE-"))
    merged_dir = Path(tempfile.mkdtemp(prefix="MERGED-"))
    try:
        for doc in docs:
            kind, namespace, name = locate(state, kinds, doc, flags.get("namespace", "default"))
            if kind is None:
                raise Fail(f"error: {mapping_error(doc, namespace)}", 2)
            local = normalize(doc, kind, namespace or None)
            live = state.get(kind, namespace or None, name)
            if kind.namespaced and not state.namespace_exists(namespace):
                raise Fail(ns_not_found(namespace), 2)
            merged, conflicts = server_side_apply(live, local, manager,
                                                  force=flags.get("force-conflicts") == "true")
            if conflicts and flags.get("force-conflicts") != "true":
                # a 409 on the dry-run apply: kubectl retries (4 times), warns, then fails
                gvk = f"{kind.group}/{doc['apiVersion'].rpartition('/')[2]}, Kind={kind.kind}"
                warn = klog_line("W", "diff.go:693", f"Object ({gvk}: {name}) keeps changing,"
                                 " diffing without lock")
                raise Fail(f"{warn}\nError from server (Conflict): {conflict_message(conflicts)}",
                           2)
            if live is None and kind.kind == "Namespace" and not kind.group:
                merged.setdefault("metadata", {}).setdefault("labels", {})[
                    "kubernetes.io/metadata.name"] = name
            live_view = without_managed_fields(state.observe(kind, live))
            merged_view = without_managed_fields(state.observe(kind, merged))
            secret = kind.kind == "Secret" and not kind.group
            if secret:
                live_view, merged_view = masked(live_view, merged_view)
            version = str(doc["apiVersion"]).rpartition("/")[2]
            group = f"{kind.group}." if kind.group else ""
            file = f"{group}{version}.{kind.kind}.{namespace}.{name}"
            (live_dir / file).write_text(as_file(live_view, secret))
            (merged_dir / file).write_text(as_file(merged_view, secret))
        return run_diff_program(live_dir, merged_dir, streams)
    finally:
        shutil.rmtree(live_dir, ignore_errors=True)
        shutil.rmtree(merged_dir, ignore_errors=True)


def run_diff_program(live: Path, merged: Path, streams: Streams) -> int:
    spec = os.environ.get("KUBECTL_EXTERNAL_DIFF", "")
    if spec:
        words = spec.split(" ")
        program = words[0]
        argv = [program, str(live), str(merged), *(w for w in words[1:] if VALID_DIFF_ARG.match(w))]
    else:
        program = "diff"
        argv = ["diff", "-u", "-N", str(live), str(merged)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise Fail(f'error: failed to run "{program}": exec: "{program}": executable file not'
                   " found in $PATH", 2) from None
    except PermissionError:
        raise Fail(f'error: failed to run "{program}": fork/exec {program}: permission denied',
                   2) from None
    streams.out.write(proc.stdout)
    streams.err.write(proc.stderr)
    if proc.returncode in (0, 1):
        return proc.returncode
    raise Fail(f'error: failed to run "{program}": exit status {proc.returncode}', 2)


# apply / create ------------------------------------------------------------------------

def cmd_apply(state: State, flags: dict[str, str], streams: Streams) -> int:
    if flags.get("server-side") != "true" or flags.get("filename") != "-":
        raise Unsupported("apply without --server-side -f -")
    manager = flags.get("field-manager", "kubectl")
    docs = documents(streams.stdin())
    check_api(state, "apply")
    kinds = state.kinds()  # discovery is read once: CRDs applied now serve no kind yet
    errors: list[str] = []
    for doc in docs:
        kind, namespace, name = locate(state, kinds, doc, flags.get("namespace", "default"))
        if kind is None:
            errors.append(mapping_error(doc, namespace))
            continue
        if kind.namespaced and not state.namespace_exists(namespace):
            errors.append(ns_not_found(namespace))
            continue
        live = state.get(kind, namespace or None, name)
        force = flags.get("force-conflicts") == "true"
        merged, conflicts = server_side_apply(live, normalize(doc, kind, namespace or None),
                                              manager, force=force)
        if conflicts and not force:
            errors.append(f"{conflict_message(conflicts)}\n{CONFLICT_HELP}")
            continue
        state.put(kind, merged, live)
        # "namespace/probe serverside-applied" (the real kubectl 1.33.9), kind.group added
        # for other groups ("clusterissuer.cert-manager.io/x serverside-applied")
        streams.out.write(f"{kind.printed}/{name} serverside-applied\n")
    if errors:
        streams.err.write(print_errors(errors) + "\n")
        return 1
    return 0


def cmd_create(state: State, flags: dict[str, str], streams: Streams) -> int:
    if flags.get("dry-run") != "server" or flags.get("filename") != "-":
        raise Unsupported("create without --dry-run=server -f -")
    docs = documents(streams.stdin())
    check_api(state, "create")
    kinds = state.kinds()
    errors: list[str] = []
    for doc in docs:
        kind, namespace, name = locate(state, kinds, doc, flags.get("namespace", "default"))
        if kind is None:
            errors.append(mapping_error(doc, namespace))
        elif kind.namespaced and not state.namespace_exists(namespace):
            errors.append(ns_not_found(namespace, creating=True))
        elif state.get(kind, namespace or None, name) is not None:
            errors.append(f'Error from server (AlreadyExists): error when creating "STDIN":'
                          f' {kind.resource} "{name}" already exists')
        elif flags.get("output") == "name":
            streams.out.write(f"{kind.printed}/{name}\n")
        else:
            streams.out.write(f"{kind.printed}/{name} created (server dry run)\n")
    if errors:
        streams.err.write(print_errors(errors) + "\n")
        return 1
    return 0


# Reading and waiting ----------------------------------------------------------------------

def target(state: State, words: list[str]) -> tuple[Kind, str]:
    """``TYPE/NAME`` (or ``TYPE NAME``) -> (kind, name)."""
    if len(words) == 1 and "/" in words[0]:
        type_, name = words[0].split("/", 1)
    elif len(words) == 2 and "/" not in words[0]:
        type_, name = words
    else:
        raise Unsupported(" ".join(words))
    kind = state.resource_type(type_)
    if kind is None:
        raise Fail(f'error: the server doesn\'t have a resource type "{type_}"')
    return kind, name


def fetch(state: State, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
    obj = state.observe(kind, state.get(kind, namespace if kind.namespaced else None, name))
    if obj is None:
        raise Fail(not_found(kind, name))
    return obj


_FILTER = re.compile(r'^(\w+)\[\?\(@\.(\w+)=="([^"]*)"\)\]$')


def jsonpath(obj: Any, expression: str) -> Any:
    """The few JSONPath forms our waits use: ``{.a.b}``, ``{.a[?(@.k=="v")].b}``."""
    if not (expression.startswith("{.") and expression.endswith("}")):
        raise Unsupported(f"jsonpath {expression}")
    value = obj
    for part in re.findall(r"[^.\[]+(?:\[[^\]]*\])?", expression[2:-1]):
        match = _FILTER.match(part)
        if match:
            items = (value or {}).get(match[1]) or [] if isinstance(value, dict) else []
            value = next((i for i in items if isinstance(i, dict)
                          and str(i.get(match[2])) == match[3]), None)
        elif re.fullmatch(r"\w+", part):
            value = value.get(part) if isinstance(value, dict) else None
        else:
            raise Unsupported(f"jsonpath {expression}")
    return value


def cmd_wait(state: State, flags: dict[str, str], words: list[str], streams: Streams) -> int:
    wanted = flags.get("for", "")
    if wanted == "create" and "timeout" in flags:
        # the real kubectl 1.33.9 against a local API: "persistentvolumeclaim/data
        # condition met" when it exists; "error: timed out waiting for the condition"
        # (exit 1) when it still does not at the deadline
        seconds(flags["timeout"])
        check_api(state, "wait")
        kind, name = target(state, words)
        namespace = flags.get("namespace", "default")
        if state.get(kind, namespace if kind.namespaced else None, name) is None:
            raise Fail("error: timed out waiting for the condition")
        streams.out.write(f"{kind.printed}/{name} condition met\n")
        return 0
    if wanted.startswith("jsonpath=") and "timeout" in flags:
        expression, _, value = wanted.removeprefix("jsonpath=").rpartition("=")
        seconds(flags["timeout"])
        check_api(state, "wait")
        kind, name = target(state, words)
        obj = fetch(state, kind, flags.get("namespace", "default"), name)
        if str(jsonpath(obj, expression)) == value:
            streams.out.write(f"{kind.printed}/{name} condition met\n")
            return 0
        raise Fail(f"error: timed out waiting for the condition on {kind.plural}/{name}")
    if not wanted.startswith("condition=") or "timeout" not in flags:
        raise Unsupported("wait without --for=condition= (or jsonpath=) and --timeout")
    seconds(flags["timeout"])
    condition, _, value = wanted.removeprefix("condition=").partition("=")
    check_api(state, "wait")
    # Several TYPE/NAME words: kubectl waits on each in turn (one deadline for all) and
    # stops at the first that fails, after printing those met (kubectl wait.go RunWait).
    several = len(words) > 1 and all("/" in w for w in words)
    for one in ([[w] for w in words] if several else [words]):
        kind, name = target(state, one)
        obj = fetch(state, kind, flags.get("namespace", "default"), name)
        if not any(str(c.get("type", "")).lower() == condition.lower()
                   and str(c.get("status", "")).lower() == (value or "true").lower()
                   for c in (obj.get("status") or {}).get("conditions") or []):
            # "error: timed out waiting for the condition on cephclusters/my-cluster"
            # (kubernetes/kubectl#1414)
            raise Fail(f"error: timed out waiting for the condition on {kind.plural}/{name}")
        # "deployment.extensions/example condition met" (kubernetes/kubernetes#80896)
        streams.out.write(f"{kind.printed}/{name} condition met\n")
    return 0


def cmd_rollout(state: State, flags: dict[str, str], words: list[str], streams: Streams) -> int:
    if words[:1] != ["status"] or "timeout" not in flags:
        raise Unsupported("rollout other than status --timeout")
    seconds(flags["timeout"])
    check_api(state, "rollout")
    kind, name = target(state, words[1:])
    if kind.group != "apps" or kind.kind not in ("Deployment", "StatefulSet", "DaemonSet"):
        raise Unsupported(f"rollout status of a {kind.kind}")
    obj = fetch(state, kind, flags.get("namespace", "default"), name)
    status = obj.get("status") or {}
    want = int(status.get("replicas", 1))
    ready = int(status.get("availableReplicas", 0))
    # the texts of kubectl's rollout status viewers (kubernetes/kubectl#1284 shows the
    # Deployment's "Waiting for deployment ... rollout to finish" line)
    if ready >= want:
        streams.out.write({
            "Deployment": f'deployment "{name}" successfully rolled out\n',
            "DaemonSet": f'daemon set "{name}" successfully rolled out\n',
            "StatefulSet": f"statefulset rolling update complete {want} pods at revision"
                           f" {name}-standin...\n",
        }[kind.kind])
        return 0
    streams.out.write({
        "Deployment": f'Waiting for deployment "{name}" rollout to finish: {ready} of {want}'
                      " updated replicas are available...\n",
        "DaemonSet": f'Waiting for daemon set "{name}" rollout to finish: {ready} of {want}'
                     " updated pods are available...\n",
        "StatefulSet": f"Waiting for {want - ready} pods to be ready...\n",
    }[kind.kind])
    raise Fail("error: timed out waiting for the condition")


def cmd_annotate(state: State, flags: dict[str, str], words: list[str], streams: Streams) -> int:
    pairs = [w for w in words if "=" in w or w.endswith("-")]
    names = [w for w in words if w not in pairs]
    if not pairs:
        raise Unsupported("annotate without KEY=VALUE")
    check_api(state, "annotate")
    kind, name = target(state, names)
    namespace = flags.get("namespace", "default")
    obj = state.get(kind, namespace if kind.namespaced else None, name)
    if obj is None:
        raise Fail(not_found(kind, name))
    current = (obj.get("metadata") or {}).get("annotations") or {}
    changes: dict[tuple[str, ...], Any] = {}
    for pair in pairs:
        if pair.endswith("-") and "=" not in pair:
            changes[("metadata", "annotations", pair[:-1])] = None
            continue
        key, _, value = pair.partition("=")
        if key in current and current[key] != value and flags.get("overwrite") != "true":
            raise Fail("error: --overwrite is false but found the following declared"
                       f" annotation(s): '{key}' already has a value ({current[key]})")
        changes[("metadata", "annotations", key)] = value
    state.put(kind, update_fields(obj, changes, "kubectl-annotate"), obj)
    streams.out.write(f"{kind.printed}/{name} annotated\n")
    return 0


# The one go-template our code sends (tasks/apps/diagnose/refs.py TEMPLATE): kind, name,
# then the keys of a Secret or ConfigMap, or a PVC's phase and storage class. The real
# kubectl 1.33.9, run against a local API serving such objects, printed
#   "Secret\tapp-config\tMONGODB_URI REDIS_URL \n"      (keys sorted, each + one space)
#   "Secret\tempty\t\n"                                  (no data: nothing)
#   "ConfigMap\tbin\tb.bin \n"                           (binaryData keys after data's)
#   "PersistentVolumeClaim\tdata\tPending\tlocal-path\n"
#   "PersistentVolumeClaim\tnosc\tPending\t\n"          (no storageClassName)
# tests/unit/test_real_kubectl_diagnose.py checks this against the real binary.
REFS_TEMPLATE = (
    '{{range .items}}{{.kind}}{{"\\t"}}{{.metadata.name}}{{"\\t"}}'
    '{{if eq .kind "PersistentVolumeClaim"}}{{.status.phase}}{{"\\t"}}'
    '{{with .spec.storageClassName}}{{.}}{{end}}'
    '{{else}}{{range $k, $v := .data}}{{$k}} {{end}}'
    '{{range $k, $v := .binaryData}}{{$k}} {{end}}{{end}}{{"\\n"}}{{end}}'
)


def render_refs(items: list[dict[str, Any]]) -> str:
    """REFS_TEMPLATE, rendered as Go's text/template does: a missing map key prints
    ``<no value>``, ranging over a missing map prints nothing, map keys in sorted order."""
    out = []
    for item in items:
        kind, name = str(item.get("kind", "")), str((item.get("metadata") or {})["name"])
        if kind == "PersistentVolumeClaim":
            phase = (item.get("status") or {}).get("phase")
            storage_class = (item.get("spec") or {}).get("storageClassName")
            rest = f"{'<no value>' if phase is None else phase}\t{storage_class or ''}"
        else:
            rest = "".join(f"{k} " for k in sorted(item.get("data") or {})) + \
                "".join(f"{k} " for k in sorted(item.get("binaryData") or {}))
        out.append(f"{kind}\t{name}\t{rest}\n")
    return "".join(out)


def selected(obj: dict[str, Any], selector: str | None) -> bool:
    """An equality-based label selector (``a=b,c==d``); other forms are unsupported."""
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        key, eq, value = term.partition("=")
        value = value.removeprefix("=")
        if not eq or not key or key.endswith("!") or any(c in term for c in " ()"):
            raise Unsupported(f"label selector {selector}")
        if labels.get(key) != value:
            return False
    return True


_PROXY = re.compile(r"^/api/v1/namespaces/([^/]+)/services/([^/:]+):([^/]+)/proxy(/.*)$")
_NODE_PROXY = re.compile(r"^/api/v1/nodes/([^/]+)/proxy(/.*)$")


def node_raw(state: State, node: str, rest: str, streams: Streams) -> int:
    """``get --raw /api/v1/nodes/NODE/proxy/PATH``: the configured kubelet answer."""
    kind = state.mapping("v1", "Node")
    assert kind is not None
    if state.get(kind, None, node) is None:
        raise Fail(f'Error from server (NotFound): nodes "{node}" not found')
    answers = state.config()["node_proxy"].get(node, {})
    if rest not in answers:
        raise Unsupported(f"get --raw /api/v1/nodes/{node}/proxy{rest} (no answer configured)")
    body = answers[rest]
    streams.out.write(body if isinstance(body, str) else go_json(body))
    return 0


def cmd_raw(state: State, path: str, words: list[str], streams: Streams) -> int:
    """``get --raw``: only the service and node proxies (see the module docstring)."""
    match = _PROXY.match(path)
    node = _NODE_PROXY.match(path)
    if words or not (match or node):
        raise Unsupported(f"get --raw {path}")
    where = api(state)
    if where.failure == "unreachable":  # the real kubectl 1.33.9: this line only
        raise Fail(f"The connection to the server {where.hostport} was refused - did you"
                   " specify the right host or port?")
    if where.failure == "unauthorized":  # the real 1.33.9 against an API answering 401
        raise Fail("error: You must be logged in to the server (Unauthorized)")
    if node is not None:
        return node_raw(state, node[1], node[2], streams)
    assert match is not None
    namespace, name, port, rest = match.groups()
    service = state.mapping("v1", "Service")
    assert service is not None
    if state.get(service, namespace, name) is None:
        raise Fail(f'Error from server (NotFound): services "{name}" not found')
    if f"Service/{namespace}/{name}" in state.injections().get("not_ready", {}):
        raise Fail(f'Error from server (ServiceUnavailable): no endpoints available for'
                   f' service "{name}"')
    answers = state.config()["service_proxy"].get(f"{namespace}/{name}:{port}", {})
    if rest not in answers:
        raise Unsupported(f"get --raw {path} (no answer configured)")
    body = answers[rest]
    streams.out.write(body if isinstance(body, str) else go_json(body))
    return 0


def cmd_get(state: State, flags: dict[str, str], words: list[str], streams: Streams) -> int:
    if "raw" in flags:
        if set(flags) != {"raw"}:
            raise Unsupported("get --raw with other flags")
        return cmd_raw(state, flags["raw"], words, streams)
    output = flags.get("output", "")
    if not words or (output != "json" and output != f"go-template={REFS_TEMPLATE}"):
        raise Unsupported("get without -o json (or the go-template of apps.diagnose)")
    check_api(state, "get")
    everywhere = flags.get("all-namespaces") == "true"
    namespace = None if everywhere else flags.get("namespace", "default")
    if "/" in words[0]:
        kind, name = target(state, words[:1])
        kinds, names = [kind], [name, *words[1:]]
    else:
        kinds = []
        for word in words[0].split(","):
            kind_ = state.resource_type(word)
            if kind_ is None:
                raise Fail(f'error: the server doesn\'t have a resource type "{word}"')
            kinds.append(kind_)
        names = words[1:]
        if names and len(kinds) > 1:
            raise Unsupported("get of several types by name")
    if names:
        items = [without_managed_fields(fetch(state, kinds[0], namespace or "default", n))
                 for n in names]
        if len(items) == 1 and output == "json":
            # kubectl 1.33.9 prints one object with 4-space indents and sorted keys
            streams.out.write(go_json(items[0], indent=4) + "\n")
            return 0
    else:
        # several types: each type's objects in turn, in the order given (kubectl 1.33.9)
        items = [without_managed_fields(state.observe(kind, o)) for kind in kinds
                 for o in state.list(kind, namespace if kind.namespaced else None)
                 if selected(o, flags.get("selector"))]
    if output != "json":
        streams.out.write(render_refs([i for i in items if i is not None]))
        return 0
    # the list shape of kubectl 1.33.9 (real, `get namespaces -o json`, `get pods -l ...`)
    streams.out.write(go_json({"apiVersion": "v1", "items": items, "kind": "List",
                               "metadata": {"resourceVersion": ""}}, indent=4) + "\n")
    return 0


def cmd_logs(state: State, flags: dict[str, str], words: list[str], streams: Streams) -> int:
    """``logs POD -n NS -c CONTAINER --previous --tail=N [--limit-bytes=M]``, as the real
    kubectl 1.33.9 runs it: it GETs the pod first (NotFound as for get), refuses a
    container the pod does not have (``error: container x is not valid for pod y``),
    then asks the API for the log; a previous instance the kubelet does not know is a
    400 with the kubelet's text (pkg/kubelet/kubelet_pods.go validateContainerLogStatus:
    ``previous terminated container %q in pod %q not found``). tailLines keeps the last
    N lines, then limitBytes cuts the result (the kubelet applies them in that order)."""
    if len(words) != 1 or "/" in words[0] or flags.get("previous") != "true" \
            or "container" not in flags or "tail" not in flags:
        raise Unsupported("logs other than POD -c C --previous --tail=N")
    check_api(state, "logs")
    pod_kind = state.mapping("v1", "Pod")
    assert pod_kind is not None
    namespace, pod, container = flags.get("namespace", "default"), words[0], flags["container"]
    obj = fetch(state, pod_kind, namespace, pod)
    spec = obj.get("spec") or {}
    names = [c.get("name") for key in ("initContainers", "containers", "ephemeralContainers")
             for c in spec.get(key) or []]
    if container not in names:
        raise Fail(f"error: container {container} is not valid for pod {pod}")
    text = state.log(namespace, pod, container, previous=True)
    if text is None:
        raise Fail(f'Error from server (BadRequest): previous terminated container'
                   f' "{container}" in pod "{pod}" not found')
    lines = text.splitlines(keepends=True)
    tail = int(flags["tail"])
    data = "".join(lines[-tail:] if tail >= 0 else lines).encode()
    if "limit-bytes" in flags:
        data = data[:int(flags["limit-bytes"])]
    streams.out.write(data.decode(errors="replace"))
    return 0


def cmd_version(state: State, flags: dict[str, str], streams: Streams) -> int:
    if flags.get("output") != "json":
        raise Unsupported("version without -o json")
    config = state.config()
    # the shape of the real kubectl 1.33.9's `version -o json` (client and kustomize
    # versions as it prints them, commit and build date marked as a stand-in's); the
    # server part is the API's /version, with the 1.31+ emulation/compatibility fields
    client = {"major": "1", "minor": "33", "gitVersion": config["kubectl_version"],
              "gitCommit": "standin", "gitTreeState": "clean",
              "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.13", "compiler": "gc",
              "platform": "linux/amd64"}
    data: dict[str, Any] = {"clientVersion": client, "kustomizeVersion": "v5.6.0"}
    failure = None
    if flags.get("client") != "true":
        try:
            check_api(state, "version")
        except Fail as exc:
            failure = exc
        else:
            v = str(config["server_version"])
            major, minor = v.lstrip("v").split(".")[:2]
            data["serverVersion"] = {
                "major": major, "minor": minor, "emulationMajor": major,
                "emulationMinor": minor, "minCompatibilityMajor": major,
                "minCompatibilityMinor": str(int(minor) - 1), "gitVersion": v,
                "gitCommit": "standin", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.4",
                "compiler": "gc", "platform": "linux/amd64"}
    streams.out.write(go_json(data, indent=2) + "\n")
    if failure is not None:
        streams.err.write(failure.text.splitlines()[-1] + "\n")
        return 1
    return 0


# The command line -------------------------------------------------------------------------

FLAGS = {
    "-n": "namespace", "--namespace": "namespace", "-o": "output", "--output": "output",
    "-f": "filename", "--filename": "filename", "--server-side": "server-side?",
    "--field-manager": "field-manager", "--for": "for", "--timeout": "timeout",
    "--overwrite": "overwrite?", "--dry-run": "dry-run", "-A": "all-namespaces?",
    "--all-namespaces": "all-namespaces?", "--client": "client?",
    "--force-conflicts": "force-conflicts?", "--raw": "raw",
    "-l": "selector", "--selector": "selector", "-c": "container", "--container": "container",
    "-p": "previous?", "--previous": "previous?", "--tail": "tail",
    "--limit-bytes": "limit-bytes",
}
ALLOWED = {
    "diff": {"server-side", "field-manager", "filename", "namespace", "force-conflicts"},
    "apply": {"server-side", "field-manager", "filename", "namespace", "force-conflicts"},
    "create": {"dry-run", "filename", "namespace", "output"},
    "wait": {"for", "timeout", "namespace"},
    "rollout": {"timeout", "namespace"},
    "annotate": {"overwrite", "namespace"},
    "get": {"output", "namespace", "all-namespaces", "selector", "raw"},
    "logs": {"namespace", "container", "previous", "tail", "limit-bytes"},
    "version": {"output", "client"},
}


def handle(state: State, args: list[str], streams: Streams) -> int:
    if not args or args[0] not in ALLOWED:
        raise Unsupported(" ".join(args[:1]))
    command = args[0]
    flags, words = parse_flags(args[1:], FLAGS)
    if set(flags) - ALLOWED[command]:
        raise Unsupported(f"{command} {sorted(set(flags) - ALLOWED[command])}")
    try:
        if command in ("diff", "apply", "create", "version"):
            if words:
                raise Unsupported(f"{command} {words}")
            return {"diff": cmd_diff, "apply": cmd_apply, "create": cmd_create,
                    "version": cmd_version}[command](state, flags, streams)
        return {"wait": cmd_wait, "rollout": cmd_rollout, "annotate": cmd_annotate,
                "get": cmd_get, "logs": cmd_logs}[command](state, flags, words, streams)
    except Fail as exc:
        streams.err.write(exc.text + "\n")
        return exc.rc


if __name__ == "__main__":
    sys.exit(run_standin("kubectl", sys.argv[1:], handle))
