"""The plan as the operator reads it: the moves table (at most 100 columns), then what to
read before applying it, each URL once."""

from __future__ import annotations

from tasks.upgrade.plan import Plan

WIDTH = 100
HEADER = ("component", "where", "from", "to", "layer")


def table(plan: Plan) -> list[str]:
    rows = [HEADER, *((m.component, m.where, m.current, m.wanted, m.layer) for m in plan.moves)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    spare = WIDTH - (sum(widths) + 2 * (len(widths) - 1))
    if spare < 0:  # "where" gives way first (a long node or release name)
        widths[1] = max(len(HEADER[1]), widths[1] + spare)
    out = []
    for row in rows:
        cells = [(c if len(c) <= w else c[:w - 1] + "~").ljust(w)
                 for c, w in zip(row, widths, strict=True)]
        out.append("  ".join(cells).rstrip()[:WIDTH])
    return out


def reading(plan: Plan) -> list[str]:
    """``<component> <version>:`` then its URLs and warnings, indented; once per target."""
    out: list[str] = []
    seen: set[tuple[str, str]] = set()
    for move in plan.moves:
        if (move.component, move.wanted) in seen:
            continue
        seen.add((move.component, move.wanted))
        if not move.notes.urls and not move.notes.warnings:
            continue
        out.append(f"{move.component} {move.wanted}:")
        out += [f"  {url}" for url in move.notes.urls]
        out += [f"  note: {text}" for text in move.notes.warnings]
    return out


def lines(plan: Plan) -> list[str]:
    """Everything ``inv upgrade --check`` prints (nothing to upgrade: one line)."""
    if not plan.moves:
        return [nothing(plan)]
    out = [f"{len(plan.moves)} version(s) move, layer by layer: {', '.join(plan.layers())}",
           *table(plan)]
    notes = reading(plan)
    if notes:
        out += ["read before upgrading:", *notes]
    out += [f"not deployed (inv deploy.all installs it): {a}" for a in plan.absent]
    return out


def nothing(plan: Plan) -> str:
    line = "nothing to upgrade: every pinned version is the one running"
    return line + (f" ({len(plan.absent)} not deployed: {', '.join(plan.absent)})"
                   if plan.absent else "")
