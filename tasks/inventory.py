"""inventory.*: check the inventory, regenerate its JSON Schema."""

from __future__ import annotations

from invoke.collection import Collection
from invoke.context import Context
from invoke.tasks import task

from tasks.cli import HELP, session, user_errors
from tasks.model.load import SCHEMA_PATH, schema_text


@task(help={"inventory": HELP["inventory"]})
def check(c: Context, inventory: str | None = None) -> None:
    """Validate the inventory without connecting anywhere (exit 2 when invalid)."""
    with user_errors():
        s = session(inventory)
        inv = s.inventory.data
        print(f"{s.inventory.path}: valid: {len(inv.hosts)} host(s), domain {inv.domain},"
              f" operators {', '.join(inv.operators)}")


@task(help={"write": "write inventory.schema.json instead of printing it"})
def schema(c: Context, write: bool = False) -> None:
    """Print (or --write) the inventory's JSON Schema, generated from the model."""
    text = schema_text()
    if write:
        SCHEMA_PATH.write_text(text)
        print(f"wrote {SCHEMA_PATH.name}")
    else:
        print(text, end="")


ns = Collection("inventory", check, schema)
