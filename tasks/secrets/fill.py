"""Filling ``secrets/*.template.yaml`` in: one encrypted ``*.sops.yaml`` per template.

A value, once in the encrypted file, is kept: ``<generate: ...>`` and ``<input: ...>``
are made or asked for only where the file has none yet (the same k3s token on every
run), identical placeholders of one file get one value (the Kafka password in both
namespaces), ``<value: ...>`` always follows the inventory, and metadata follows the
template. Keys the operator added with ``inv secrets.edit`` are kept. The plaintext is
built in memory and given to ``sops --encrypt`` on stdin; only its output is written.

Templates flux.bootstrap fills (``BOOTSTRAP_ONLY``: deploy key, Flux's age identity) are
left to it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tasks.engine.errors import UserError
from tasks.secrets import values as vals
from tasks.secrets.outcome import CHANGED, OK, SKIPPED, WOULD_CHANGE, Outcome
from tasks.secrets.sopscli import Sops
from tasks.secrets.store import Paths, parse_decrypted, recipients_of, write_atomic
from tasks.stack import sops as rules
from tasks.stack.render import Document, parse_documents, render_text

Decrypt = Callable[[Path], bytes]


@dataclass
class FilePlan:
    """One template, what its encrypted file holds, and what is still to be made."""

    stem: str
    path: Path
    rel: str
    docs: list[Document]
    existing: list[dict[str, Any]] | None = None
    known: dict[str, str] = field(default_factory=dict)       # placeholder -> kept value
    generate: dict[str, str] = field(default_factory=dict)    # placeholder -> description
    ask: dict[str, vals.Wanted] = field(default_factory=dict)  # placeholder -> input
    unreadable: str = ""  # why the existing file could not be read (plan mode only)

    def keys_of(self, placeholders: Mapping[str, object]) -> list[str]:
        found = [k for d in self.docs for k, v in d.obj["stringData"].items()
                 if v in placeholders]
        return list(dict.fromkeys(found))

    def build(self, values: Mapping[str, str]) -> list[dict[str, Any]]:
        """The documents to encrypt, every placeholder replaced."""
        out = []
        for i, doc in enumerate(self.docs):
            obj = copy.deepcopy(doc.obj)
            filled: dict[str, str] = {}
            for key, raw in doc.obj["stringData"].items():
                kind, text = vals.placeholder(raw)
                filled[key] = text if kind == "value" else values[raw]
            for key, value in _old_values(self.existing, i).items():
                filled.setdefault(key, value)
            obj["stringData"] = filled
            out.append(obj)
        return out

    def changes(self, docs: list[dict[str, Any]], *, done: bool = True
                ) -> tuple[str, str] | None:
        """``("create" | "update", what)`` for these documents; None when unchanged."""
        gen, ask = ("generated", "asked for") if done else ("generate", "ask for")
        made = [*(f"{gen} {k}" for k in self.keys_of(self.generate)),
                *(f"{ask} {k}" for k in self.keys_of(self.ask))]
        if self.existing is None:
            return "create", ", ".join(made or ["no secret values"])
        if docs == self.existing:
            return None
        followed = [key for i, doc in enumerate(self.docs)
                    for key, raw in doc.obj["stringData"].items()
                    if vals.placeholder(raw)[0] == "value"
                    and _old_values(self.existing, i).get(key) != docs[i]["stringData"][key]]
        meta = [_without_values(d) for d in docs] != [
            _without_values(d) for d in self.existing]
        parts = [*made, *(f"{k} from the inventory" for k in dict.fromkeys(followed)),
                 *(["metadata from the template"] if meta else [])]
        return "update", ", ".join(parts or ["identical placeholders made one value"])


def _old_values(existing: list[dict[str, Any]] | None, i: int) -> dict[str, str]:
    if not existing or i >= len(existing):
        return {}
    data = existing[i].get("stringData")
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _without_values(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("stringData", "data")}


def template_plan(paths: Paths, template: Path, ctx: Mapping[str, Any],
                  decrypt: Decrypt | None, operator_keys: list[str]) -> FilePlan:
    stem = rules.stem(template)
    docs = parse_documents(render_text(template, ctx), paths.rel(template))
    problems = rules.template_problems(docs) + [
        f"{d.label}: stringData.{k}: {p}" for d in docs
        for k, v in d.obj["stringData"].items() if v.startswith("<generate:")
        for p in [vals.generator_problem(vals.placeholder(v)[1])] if p]
    if problems:
        raise UserError(problems[0], lines=problems)
    path = paths.encrypted(stem)
    plan = FilePlan(stem, path, paths.rel(path), docs)
    if path.exists():
        text = path.read_text()
        problems = rules.encryption_problems(text, plan.rel)
        if problems:
            raise UserError(problems[0], lines=[*problems, f"{plan.rel}: not encrypted:"
                                                " nothing written; encrypt or remove it"])
        if decrypt is None:
            plan.unreadable = "exists; its values are read once the age key exists"
            return plan
        if not set(recipients_of(text)) & set(operator_keys):
            raise UserError(f"{plan.rel}: encrypted for {', '.join(recipients_of(text))},"
                            f" not for your key ({', '.join(operator_keys)}): re-encrypt it"
                            " (inv secrets.rotate) where a recipient's key is")
        plan.existing = parse_decrypted(decrypt(path), plan.rel)
    for i, doc in enumerate(docs):
        old = _old_values(plan.existing, i)
        for key, raw in doc.obj["stringData"].items():
            kind, text = vals.placeholder(raw)
            if kind == "value":
                continue
            if old.get(key) and raw not in plan.known:
                plan.known[raw] = old[key]
    for doc in docs:
        for key, raw in doc.obj["stringData"].items():
            kind, text = vals.placeholder(raw)
            if raw in plan.known or kind == "value":
                continue
            if kind == "generate":
                plan.generate.setdefault(raw, text)
            else:
                plan.ask.setdefault(raw, vals.Wanted(paths.rel(template),
                                                     f"{doc.namespace}/{doc.name}", key, text))
    return plan


def plan_all(paths: Paths, ctx: Mapping[str, Any], decrypt: Decrypt | None,
             operator_keys: list[str]) -> tuple[list[FilePlan], list[Outcome]]:
    """A plan per template, and a line for each template left to flux.bootstrap."""
    plans, skipped = [], []
    for template in rules.templates(paths.secrets_dir):
        if rules.stem(template) in rules.BOOTSTRAP_ONLY:
            skipped.append(Outcome(SKIPPED, paths.rel(paths.encrypted(rules.stem(template))),
                                   "written by flux.bootstrap"))
            continue
        plans.append(template_plan(paths, template, ctx, decrypt, operator_keys))
    return plans, skipped


def preview(plans: list[FilePlan]) -> list[Outcome]:
    """Plan mode: what each file would get (nothing generated, asked or written)."""
    out = []
    for plan in plans:
        if plan.unreadable:
            out.append(Outcome(OK, plan.rel, plan.unreadable))
            continue
        pending = {raw: "" for raw in [*plan.generate, *plan.ask]}
        change = plan.changes(plan.build({**plan.known, **pending}), done=False)
        out.append(Outcome(WOULD_CHANGE, plan.rel, f"{change[0]} ({change[1]})") if change
                   else Outcome(OK, plan.rel, "unchanged"))
    return out


def dump(docs: list[dict[str, Any]]) -> bytes:
    return yaml.safe_dump_all(docs, sort_keys=False, width=100000,
                              default_flow_style=False).encode()


def apply(plans: list[FilePlan], inputs: vals.Inputs, sops: Sops,
          recipients: list[str]) -> list[Outcome]:
    """Ask for every missing input first (all or nothing), then write what differs."""
    wanted = [w for p in plans for w in p.ask.values()]
    missing = inputs.missing(wanted)
    if missing:
        raise UserError(missing[0], lines=[*missing, "nothing written"])
    asked = {(p.stem, raw): inputs.get(w) for p in plans for raw, w in p.ask.items()}
    out = []
    for plan in plans:
        values = {**plan.known, **{raw: vals.generate(text) for raw, text in plan.generate.items()},
                  **{raw: v for (stem, raw), v in asked.items() if stem == plan.stem}}
        docs = plan.build(values)
        change = plan.changes(docs)
        if change is None:
            out.append(Outcome(OK, plan.rel, "unchanged"))
            continue
        secret_values = [v for d in docs for v in d["stringData"].values()]
        cipher = sops.encrypt(dump(docs), recipients, f"encrypting {plan.rel}", secret_values)
        problems = rules.encryption_problems(cipher.decode(errors="replace"), plan.rel)
        if problems:
            raise UserError(problems[0], lines=[*problems, f"{plan.rel}: sops' output is not"
                                                " encrypted as expected; not written"])
        write_atomic(plan.path, cipher)
        out.append(Outcome(CHANGED, plan.rel, f"{change[0]}d ({change[1]})"))
    return out
