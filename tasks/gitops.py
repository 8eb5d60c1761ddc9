"""gitops.*: write the GitOps layout Flux reconciles (tasks/stack/gitops.py)."""

from __future__ import annotations

from pathlib import Path

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks.cli import HELP, session, user_errors
from tasks.repo import REPO_ROOT
from tasks.stack import gitops, sops
from tasks.stack.context import context

DEFAULT_OUTPUT = gitops.DEFAULT_OUTPUT


@task(help={"inventory": HELP["inventory"],
            "output": f"directory to write into (default {DEFAULT_OUTPUT}); inside this"
                      " repository only under the default. Only files the last render wrote"
                      f" (listed in <output>/{gitops.MANIFEST}) are replaced or removed",
            "force": "also overwrite (or remove) files edited by hand since the last render"
                     " and files in the way that it did not write",
            "sops-config": "also rewrite the repository's .sops.yaml from the inventory's"
                           " age recipients"})
def render(c: Context, inventory: str | None = None, output: str = DEFAULT_OUTPUT,
           sops_config: bool = False, force: bool = False) -> None:
    """Write the GitOps layout (gitops.path, .sops.yaml) from the rendered stack.

    Refuses an output inside this repository other than the default cache, and never
    changes a file the previous render did not write (or that was edited since) unless
    ``--force``.
    """
    with user_errors():
        s = session(inventory, offline=True)
        ctx = context(s.inventory.data)
        out = Path(output)
        out = out if out.is_absolute() else REPO_ROOT / out
        gitops.check_output(out, REPO_ROOT)  # before rendering: a refusal comes fast
        done = gitops.write(gitops.build(ctx), out, force=force, repo_root=REPO_ROOT)
        for line in done.report():
            print(line)
        print(f"wrote {len(done.changed)} of {len(done.files)} files (the others were"
              f" unchanged) to {out}/{gitops.root_path(ctx)} (and .sops.yaml,"
              f" {gitops.MANIFEST})")
        if sops_config:
            sops.SOPS_CONFIG.write_text(sops.creation_rules(
                list(ctx["secrets"]["age_recipients"])))
            print(f"wrote {sops.SOPS_CONFIG.relative_to(REPO_ROOT)}")


@task(help={"inventory": HELP["inventory"],
            "clone": "a clone of the GitOps repository (gitops.repository), on gitops.branch"
                     " and with no uncommitted change",
            "message": "the commit message",
            "push": "also git push (never forced) to origin"})
def push(c: Context, clone: str, inventory: str | None = None,
         message: str = "Render the platform's GitOps layout (inv gitops.push)",
         push: bool = False) -> None:
    """Render the GitOps layout into a clone of the GitOps repository and commit it."""
    from tasks.stack import gitops_push

    with user_errors():
        s = session(inventory, offline=True)
        inv = s.inventory.data
        ctx = context(inv)
        folder = Path(clone).expanduser().resolve()
        gitops.check_output(folder, REPO_ROOT)
        gitops_push.check_clone(folder, inv.gitops.branch)
        done = gitops.write(gitops.build(ctx), folder, force=False, repo_root=REPO_ROOT)
        for line in done.report():
            print(line)
        short = gitops_push.commit(folder, message)
        if short is None:
            print(f"{folder}: already has this layout: nothing to commit")
        else:
            print(f"{folder}: committed {short} ({len(done.changed)} files changed)")
        if push:
            gitops_push.push(folder, inv.gitops.branch)
            print(f"pushed to origin {inv.gitops.branch}")


ns = Collection("gitops", render, push)
