"""STAND-IN for ``helm``, for tests only: run by ``tests/standins/helm``.

It answers the helm command lines of the cluster steps (tasks/cluster/kube.py, and
``helm version --short`` of Tools.find) from the stand-in cluster in
``$STACK_STANDIN_STATE`` (see standin_common.py), as helm 4 (or helm 3, as configured
by ``helm_version``) prints them; anything else exits 2 with ``stand-in: unsupported``.

- ``version --short``: the configured version (``v4.1.4+gstandin``);
- ``list [-A] [--deployed] [--failed] [--pending] -o json``: the latest revision of each
  release, in helm's ``releaseElement`` JSON (helm pkg/cmd/list.go);
- ``get values NAME [-n NS] -o json``: the user-supplied values of the latest revision
  (``null`` when none, as helm's EncodeJSON of an empty map read back prints);
- ``upgrade --install NAME ARCHIVE [-n NS] [--create-namespace] -f - [--wait[=S]]
  [--timeout=D] [--rollback-on-failure | --atomic]``: reads the values from stdin and
  the chart's name, version and appVersion from ``<chart>/Chart.yaml`` inside the .tgz
  (a ``helm package`` archive or any tar.gz laid out the same), or from a chart
  directory's ``Chart.yaml`` (our own chart, ``charts/apps``); installs the CRDs of the
  chart's ``crds/`` folder and those the config lists for the chart name; creates the
  namespace (``--create-namespace``, labelled ``name: NS`` as helm does) and the chart's
  configured objects; records a new revision, the previous one superseded.

Failures as helm prints them (helm pkg/cmd/upgrade.go, pkg/action/install.go): an
injected ``helm_fail`` or a chart object that is not Ready makes the install or upgrade
fail; with ``--rollback-on-failure`` (helm 3: ``--atomic``) an install is uninstalled
and an upgrade rolled back (a new revision, a copy of the last deployed one).
"""

from __future__ import annotations

import copy
import sys
import tarfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from standin_common import (
    Kind,
    State,
    Streams,
    Unsupported,
    api,
    go_json,
    key_of,
    kind_of_crd,
    normalize,
    parse_flags,
    parse_kinds,
    run_standin,
    seconds,
    server_side_apply,
    update_fields,
)


class Fail(Exception):
    def __init__(self, text: str, rc: int = 1) -> None:
        super().__init__(text)
        self.text, self.rc = text, rc


def major(state: State) -> int:
    version = str(state.config()["helm_version"])
    return int(version.lstrip("v").split(".")[0])


def check_api(state: State) -> None:
    """helm's text when the API cannot be reached (the real helm 4.1.4 and 3.17.2 against a
    closed port and an API answering 401): ``Error: kubernetes cluster unreachable: <cause>``
    ("Kubernetes" capitalised by helm 3), exit 1."""
    where = api(state)
    if where.failure is None:
        return
    word = "kubernetes" if major(state) >= 4 else "Kubernetes"
    raise Fail(f"Error: {word} cluster unreachable: {where.cause('/version')}")


def go_time(state: State, tick: int) -> str:
    """Go's time.String(): ``2020-06-18 14:17:46.125134977 +0000 UTC`` (helm list's
    ``updated``, as in helm's own list help and helm/helm#11718)."""
    t = state.time_at(tick)
    nanos = f"{100_000_000 + tick * 1000 + 1:09d}"
    return f"{t:%Y-%m-%d %H:%M:%S}.{nanos} +0000 UTC"


def ansic(state: State, tick: int) -> str:
    t = state.time_at(tick)  # Go's time.ANSIC: "Mon Jan _2 15:04:05 2006"
    return f"{t:%a %b} {t.day:2d} {t:%H:%M:%S %Y}"


# list / get values ---------------------------------------------------------------------

PENDING = ("pending-install", "pending-upgrade", "pending-rollback")


def cmd_list(state: State, flags: dict[str, str], words: list[str], streams: Streams) -> int:
    if words or flags.get("output") != "json":
        raise Unsupported("list without -o json")
    check_api(state)
    wanted: set[str] = set()
    if flags.get("deployed"):
        wanted.add("deployed")
    if flags.get("failed"):
        wanted.add("failed")
    if flags.get("pending"):
        wanted.update(PENDING)
    if flags.get("superseded"):
        wanted.add("superseded")
    if flags.get("all"):
        wanted = set()
    elif not wanted:
        wanted = {"deployed", "failed"}  # helm list's default (its help says so)
    namespace = None if flags.get("all-namespaces") else flags.get("namespace", "default")
    elements = []
    for release in sorted(state.releases(), key=lambda r: (r["name"], r["namespace"])):
        if namespace is not None and release["namespace"] != namespace:
            continue
        latest = release["revisions"][-1]
        if wanted and latest["status"] not in wanted:
            continue
        # helm pkg/cmd/list.go releaseElement, in its field order (revision a string);
        # helm/helm#11281 shows the same fields in `helm list -oyaml`
        elements.append({"name": release["name"], "namespace": release["namespace"],
                         "revision": str(latest["revision"]),
                         "updated": go_time(state, latest["tick"]),
                         "status": latest["status"],
                         "chart": f"{latest['chart']}-{latest['version']}",
                         "app_version": latest["app_version"]})
    streams.out.write(go_json(elements) + "\n")  # an empty list is "[]", never null
    return 0


def cmd_get(state: State, flags: dict[str, str], words: list[str], streams: Streams) -> int:
    if len(words) != 2 or words[0] != "values" or flags.get("output") != "json" \
            or "revision" in flags or "all" in flags:
        raise Unsupported("get other than values NAME -o json")
    check_api(state)
    release = state.release(flags.get("namespace", "default"), words[1])
    if release is None or release["revisions"][-1]["status"] == "uninstalled":
        raise Fail("Error: release: not found")  # helm/helm#10844, #10967
    values = release["revisions"][-1]["values"]
    # helm's EncodeJSON of the user-supplied values: an empty map is stored as omitted
    # and read back nil, hence "null" (helm cmd/helm get_values.go)
    streams.out.write((go_json(values) if values else "null") + "\n")
    return 0


# upgrade --install ---------------------------------------------------------------------

def read_chart_directory(path: Path, helm4: bool) -> dict[str, Any]:
    """Chart.yaml and the crds/ documents of an unpacked chart (``helm upgrade NAME
    ./charts/apps``: helm loads the directory as it would the archive)."""
    if not (path / "Chart.yaml").is_file():
        # the real helm 4.1.4 and 3.17.2 (helm template) on a folder without Chart.yaml
        raise Fail(f"Error: unable to detect chart at {path}/Chart.yaml: open"
                   f" {path}/Chart.yaml: no such file or directory" if helm4
                   else "Error: Chart.yaml file is missing")
    meta = yaml.safe_load((path / "Chart.yaml").read_text()) or {}
    crds = []
    for file in sorted((path / "crds").glob("*")) if (path / "crds").is_dir() else []:
        if file.suffix in (".yaml", ".yml", ".json"):
            crds += [d for d in yaml.safe_load_all(file.read_text()) if isinstance(d, dict)]
    if not meta.get("name") or not meta.get("version"):
        raise Fail("Error: validation: chart.metadata.name is required")
    return {"name": str(meta["name"]), "version": str(meta["version"]),
            "app_version": str(meta.get("appVersion", "")), "crds": crds}


def read_chart(path: str, helm4: bool = True) -> dict[str, Any]:
    """Chart.yaml and the crds/ documents of a chart archive (or chart directory)."""
    if Path(path).is_dir():
        return read_chart_directory(Path(path), helm4)
    if not Path(path).is_file():
        raise Fail(f'Error: path "{path}" not found')  # the real helm 4.1.4 and 3.17.2
    try:
        with tarfile.open(path, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            charts = [m for m in members
                      if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")]
            if not charts:
                raise Fail("Error: Chart.yaml file is missing")
            top = charts[0].name.split("/")[0]

            def text(member: tarfile.TarInfo) -> str:
                f = tar.extractfile(member)
                assert f is not None
                return f.read().decode()

            meta = yaml.safe_load(text(charts[0])) or {}
            crds = []
            for m in members:
                if m.name.startswith(f"{top}/crds/") and m.name.endswith((".yaml", ".yml",
                                                                          ".json")):
                    crds += [d for d in yaml.safe_load_all(text(m)) if isinstance(d, dict)]
    except (tarfile.TarError, OSError, EOFError):
        raise Fail(f"Error: file '{path}' does not appear to be a gzipped archive; got"
                   " 'application/octet-stream'") from None
    if not meta.get("name") or not meta.get("version"):
        raise Fail("Error: validation: chart.metadata.name is required")
    return {"name": str(meta["name"]), "version": str(meta["version"]),
            "app_version": str(meta.get("appVersion", "")), "crds": crds}


def install_crds(state: State, chart: dict[str, Any], *, first: bool) -> None:
    """The chart's CRDs: its crds/ folder (on install only, as helm does) and those the
    config lists for its name (cert-manager templates them: they follow every upgrade)."""
    crd_kind = state.mapping("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert crd_kind is not None
    wanted = list(chart["crds"]) if first else []
    for kind in parse_kinds(state.config()["chart_crds"].get(chart["name"], [])):
        wanted.append(kind.crd())
    for crd in wanted:
        if kind_of_crd(crd) is None:
            continue
        name = crd["metadata"]["name"]
        live = state.get(crd_kind, None, name)
        if live is None:
            merged, _ = server_side_apply(None, normalize(crd, crd_kind, None), "helm")
            state.put(crd_kind, merged, None)


Objects = list[tuple[Kind, dict[str, Any]]]


def chart_objects(state: State, chart: str, release: str, namespace: str) -> Objects:
    out = []
    for obj in copy.deepcopy(state.config()["chart_objects"].get(chart, [])):
        kind = state.mapping(obj["apiVersion"], obj["kind"])
        if kind is None:
            raise Fail(f'Error: unable to build kubernetes objects from release manifest:'
                       f' resource mapping not found for name: "{obj["metadata"]["name"]}"'
                       f' namespace: "" from "": no matches for kind "{obj["kind"]}" in'
                       f' version "{obj["apiVersion"]}"\nensure CRDs are installed first')
        meta = obj.setdefault("metadata", {})
        meta.setdefault("labels", {})["app.kubernetes.io/managed-by"] = "Helm"
        meta.setdefault("annotations", {}).update({"meta.helm.sh/release-name": release,
                                                   "meta.helm.sh/release-namespace": namespace})
        out.append((kind, normalize(obj, kind, meta.get("namespace") or namespace)))
    return out


def failure_of(state: State, release: str, namespace: str,
               objects: Objects, wait: bool) -> str | None:
    """Why this install/upgrade fails: an injected helm_fail (used up once per time), or,
    with --wait, a chart object a test keeps from being Ready."""
    injected = state.injections()
    fails = injected.get("helm_fail", {})
    entry = fails.get(f"{namespace}/{release}")
    if entry is not None:
        times = entry.get("times")
        if times is not None:
            if times <= 1:
                fails.pop(f"{namespace}/{release}")
            else:
                entry["times"] = times - 1
            state.set_injections(injected)
        return str(entry.get("message") or "context deadline exceeded")
    if not wait:
        return None
    for kind, obj in objects:
        meta = obj["metadata"]
        if key_of(kind, meta.get("namespace"), meta["name"]) in injected.get("not_ready", {}):
            # helm 4's kstatus wait ("resource Deployment/hfd-11/x not ready. status:
            # InProgress, message: Available: 0/1" + "context deadline exceeded", as a
            # Helm 4 tutorial quotes it); helm 3's legacy wait only says the deadline
            if major(state) >= 4:
                where = f"{kind.kind}/{meta['namespace']}/{meta['name']}" if kind.namespaced \
                    else f"{kind.kind}/{meta['name']}"
                return (f"resource {where} not ready. status: InProgress, message:"
                        " Available: 0/1\ncontext deadline exceeded")
            return "context deadline exceeded"
    return None


def status_text(state: State, name: str, namespace: str, revision: dict[str, Any]) -> str:
    # helm's statusPrinter table (pkg/cmd/status.go); helm 4 adds DESCRIPTION
    lines = [f"NAME: {name}", f"LAST DEPLOYED: {ansic(state, revision['tick'])}",
             f"NAMESPACE: {namespace}", f"STATUS: {revision['status']}",
             f"REVISION: {revision['revision']}"]
    if major(state) >= 4:
        lines.append(f"DESCRIPTION: {revision['description']}")
    return "\n".join([*lines, "TEST SUITE: None"]) + "\n"


def cmd_upgrade(state: State, flags: dict[str, str], words: list[str], streams: Streams) -> int:
    helm4 = major(state) >= 4
    if "rollback-on-failure" in flags and not helm4:
        raise Fail("Error: unknown flag: --rollback-on-failure")  # the real helm 3.17.2
    if len(words) != 2 or flags.get("values", "-") != "-":
        raise Unsupported("upgrade other than NAME ARCHIVE [-f -]")
    strategies = ("", "watcher", "legacy", "hookOnly", "true", "false") if helm4 \
        else ("true", "false")
    if flags.get("wait", "false") not in strategies:
        raise Unsupported(f"--wait={flags['wait']}")
    if "timeout" in flags:
        seconds(flags["timeout"])
    name, archive = words
    namespace = flags.get("namespace", "default")
    rollback = bool(flags.get("rollback-on-failure") or flags.get("atomic"))
    flag_word = "rollback-on-failure" if helm4 else "atomic"
    wait = flags.get("wait", "false") not in ("false", "hookOnly") or rollback
    values: Any = {}
    if "values" in flags:
        try:
            values = yaml.safe_load(streams.stdin().decode()) or {}
        except yaml.YAMLError as exc:
            raise Fail(f"Error: failed to parse -: {exc}") from None
        if not isinstance(values, dict):
            raise Fail("Error: failed to parse -: error unmarshaling JSON: json: cannot"
                       " unmarshal into Go value of type map[string]interface {}")
    if flags.get("atomic") and helm4:
        streams.err.write("Flag --atomic has been deprecated, use --rollback-on-failure"
                          " instead\n")
    check_api(state)
    release = state.release(namespace, name)
    latest = release["revisions"][-1] if release else None
    installing = latest is None or latest["status"] == "uninstalled"
    if installing and not flags.get("install"):
        raise Fail(f'Error: UPGRADE FAILED: "{name}" has no deployed releases')
    if latest is not None and latest["status"] in PENDING:
        raise Fail("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in"
                   " progress")
    if installing:
        # helm pkg/cmd/upgrade.go prints this, then installs
        streams.out.write(f'Release "{name}" does not exist. Installing it now.\n')
    chart = read_chart(archive, helm4)
    ns_kind = state.mapping("v1", "Namespace")
    assert ns_kind is not None
    if installing and not state.namespace_exists(namespace):
        if not flags.get("create-namespace"):
            raise Fail(f'Error: create: failed to create: namespaces "{namespace}" not found')
        ns = {"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": namespace, "labels": {"name": namespace}}}
        state.put(ns_kind, update_fields(ns, {("metadata", "labels", "name"): namespace},
                                         "helm"), None)
    install_crds(state, chart, first=installing)
    objects = chart_objects(state, chart["name"], name, namespace)
    problem = failure_of(state, name, namespace, objects, wait)
    tick = state.tick()
    revisions = list(release["revisions"]) if release and not installing else []
    number = (revisions[-1]["revision"] if revisions else 0) + 1
    new = {"revision": number, "chart": chart["name"], "version": chart["version"],
           "app_version": chart["app_version"], "values": values, "tick": tick,
           "status": "deployed",
           "description": "Install complete" if installing else "Upgrade complete"}
    previous = next((r for r in reversed(revisions) if r["status"] == "deployed"), None)
    for r in revisions:
        if r["status"] == "deployed":
            r["status"] = "superseded"
    record = {"name": name, "namespace": namespace, "revisions": revisions}
    if problem is None:
        for kind, obj in objects:
            meta = obj["metadata"]
            live = state.get(kind, meta.get("namespace"), meta["name"])
            merged, _ = server_side_apply(live, obj, "helm", force=True)
            state.put(kind, merged, live)
        revisions.append(new)
        state.put_release(record)
        if not installing:
            streams.out.write(f'Release "{name}" has been upgraded. Happy Helming!\n')
        streams.out.write(status_text(state, name, namespace, new))
        return 0
    what = "Release" if installing else "Upgrade"
    revisions.append({**new, "status": "failed",
                      "description": f'{what} "{name}" failed: {problem}'})
    if installing:
        if rollback:  # helm pkg/action/install.go failRelease: uninstalled, no history
            state.delete_release(namespace, name)
            raise Fail(f"Error: release {name} failed, and has been uninstalled due to"
                       f" {flag_word} being set: {problem}")
        state.put_release(record)
        raise Fail(f"Error: {problem}")
    if rollback and previous is not None:  # a new revision: the last deployed one again
        revisions.append({**previous, "revision": number + 1, "tick": state.tick(),
                          "status": "deployed",
                          "description": f"Rollback to {previous['revision']}"})
        state.put_release(record)
        raise Fail(f"Error: UPGRADE FAILED: release {name} failed, and has been rolled back due"
                   f" to {flag_word} being set: {problem}")
    state.put_release(record)
    raise Fail(f"Error: UPGRADE FAILED: {problem}")


# rollback --------------------------------------------------------------------------------

def cmd_rollback(state: State, flags: dict[str, str], words: list[str], streams: Streams) -> int:
    """``rollback NAME REVISION [-n NS] [--wait[=S]] [--timeout=D]``: a new revision, a copy
    of REVISION, deployed (helm pkg/action/rollback.go: the one deployed before is
    superseded; its description "Rollback to N"); helm prints "Rollback was a success!
    Happy Helming!" (pkg/cmd/rollback.go)."""
    if len(words) != 2 or not words[1].isdigit():
        raise Unsupported("rollback other than NAME REVISION")
    if "timeout" in flags:
        seconds(flags["timeout"])
    check_api(state)
    name, number = words[0], int(words[1])
    release = state.release(flags.get("namespace", "default"), name)
    if release is None:
        raise Fail("Error: release: not found")
    revisions = release["revisions"]
    target = next((r for r in revisions if r["revision"] == number), None)
    if target is None:
        raise Fail("Error: release: not found")
    if revisions[-1]["status"] in PENDING:
        raise Fail("Error: another operation (install/upgrade/rollback) is in progress")
    for r in revisions:
        if r["status"] == "deployed":
            r["status"] = "superseded"
    revisions.append({**target, "revision": revisions[-1]["revision"] + 1,
                      "tick": state.tick(), "status": "deployed",
                      "description": f"Rollback to {number}"})
    state.put_release(release)
    streams.out.write("Rollback was a success! Happy Helming!\n")
    return 0


# The command line -------------------------------------------------------------------------

FLAGS = {
    "-n": "namespace", "--namespace": "namespace", "-o": "output", "--output": "output",
    "-A": "all-namespaces?", "--all-namespaces": "all-namespaces?", "-a": "all?",
    "--all": "all?", "--deployed": "deployed?", "--failed": "failed?", "--pending": "pending?",
    "--superseded": "superseded?", "--short": "short?", "--install": "install?",
    "-i": "install?", "--create-namespace": "create-namespace?", "-f": "values",
    "--values": "values", "--timeout": "timeout", "--atomic": "atomic?",
    "--rollback-on-failure": "rollback-on-failure?", "--revision": "revision",
}
ALLOWED = {
    "version": {"short"},
    "list": {"all-namespaces", "all", "deployed", "failed", "pending", "superseded", "output",
             "namespace"},
    "get": {"namespace", "output", "revision", "all"},
    "upgrade": {"install", "namespace", "create-namespace", "values", "wait", "timeout",
                "atomic", "rollback-on-failure"},
    "rollback": {"namespace", "wait", "timeout"},
}


def handle(state: State, args: list[str], streams: Streams) -> int:
    if not args or args[0] not in ALLOWED:
        raise Unsupported(" ".join(args[:1]))
    command = args[0]
    spec = dict(FLAGS)
    # helm 4's --wait takes an optional strategy (--wait[=watcher]); helm 3's is a bool
    spec["--wait"] = "wait" if major(state) >= 4 else "wait?"
    flags, words = parse_flags(args[1:], spec, optional_values=("--wait",))
    flags = {k: ("" if v == "false" and k != "wait" else v) for k, v in flags.items()}
    if set(flags) - ALLOWED[command]:
        raise Unsupported(f"{command} {sorted(set(flags) - ALLOWED[command])}")
    try:
        if command == "version":
            if words or not flags.get("short"):
                raise Unsupported("version other than --short")
            streams.out.write(f"{state.config()['helm_version']}\n")
            return 0
        return {"list": cmd_list, "get": cmd_get, "upgrade": cmd_upgrade,
                "rollback": cmd_rollback}[command](
            state, flags, words, streams)
    except Fail as exc:
        streams.err.write(exc.text + "\n")
        return exc.rc


if __name__ == "__main__":
    sys.exit(run_standin("helm", sys.argv[1:], handle))
