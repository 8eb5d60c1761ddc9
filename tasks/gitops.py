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

DEFAULT_OUTPUT = ".cache/gitops"


@task(help={"inventory": HELP["inventory"],
            "output": f"directory to write into (default {DEFAULT_OUTPUT}); its <gitops.path>"
                      " subdirectory is replaced",
            "sops-config": "also rewrite the repository's .sops.yaml from the inventory's"
                           " age recipients"})
def render(c: Context, inventory: str | None = None, output: str = DEFAULT_OUTPUT,
           sops_config: bool = False) -> None:
    """Write the GitOps layout (gitops.path, .sops.yaml) from the rendered stack."""
    with user_errors():
        s = session(inventory, offline=True)
        ctx = context(s.inventory.data)
        out = Path(output)
        out = out if out.is_absolute() else REPO_ROOT / out
        written = gitops.write(gitops.build(ctx), out)
        print(f"wrote {len(written)} files to {out}/{gitops.root_path(ctx)} (and .sops.yaml)")
        if sops_config:
            sops.SOPS_CONFIG.write_text(sops.creation_rules(
                list(ctx["secrets"]["age_recipients"])))
            print(f"wrote {sops.SOPS_CONFIG.relative_to(REPO_ROOT)}")


ns = Collection("gitops", render)
