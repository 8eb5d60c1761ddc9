"""Reading the inventory file: bytes to data, refusing what would hurt before it does.

One loader, :class:`InventoryLoader` (a ``yaml.SafeLoader``), adds the limits PyYAML
lacks: nesting depth (deep flow collections were a ``RecursionError``), nodes counted
with aliases expanded (a "billion laughs" document is refused while it is composed,
before anything walks or prints it), duplicate keys (YAML would keep the last silently),
integers of a sane length (thousands of digits were a ``ValueError``). Every problem is
one :class:`InventoryError` line ``file:line:column: ...``; nothing here echoes user text
unescaped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from tasks.engine.errors import InventoryError
from tasks.model.fields import escape, quoted

MAX_BYTES = 1 << 20  # 1 MiB: a real inventory is a few kB
MAX_DEPTH = 50
MAX_NODES = 10_000  # once aliases are expanded
MAX_INT_CHARS = 30
MERGE_TAG = "tag:yaml.org,2002:merge"


class Refused(yaml.MarkedYAMLError):
    """Valid YAML we will not take: too deep, too big, duplicate keys."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class InventoryLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with limits on depth, expanded size, duplicates, integers."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[str, int] = {}  # anchor -> its node's size, aliases expanded

    def _count(self, nodes: int, mark: Any) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            raise Refused(f"too many YAML aliases/nodes (more than {MAX_NODES} once aliases"
                          " are expanded)", mark)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            if event.anchor is not None and event.anchor in self.anchors:
                size = self._sizes.get(event.anchor)
                if size is None:
                    raise Refused("a YAML alias to a node that contains it (a recursive"
                                  " structure)", event.start_mark)
                self._count(size, event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise Refused(f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        before = self._nodes
        self._count(1, event.start_mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if event.anchor is not None:
            self._sizes[event.anchor] = self._nodes - before
        return node

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        node = super().compose_mapping_node(anchor)
        first: dict[tuple[str, str], ScalarNode] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.tag == MERGE_TAG:
                continue  # merged keys (<<) may be overridden: that is what they are for
            seen = first.setdefault((key.tag, key.value), key)
            if seen is not key:
                raise Refused(f"duplicate key {quoted(key.value)} (first on line"
                              f" {seen.start_mark.line + 1})", key.start_mark)
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # a constructor's own failure, e.g. a bad date
            raise Refused(f"cannot read this value: {escape(str(exc))}",
                          node.start_mark) from None

    def construct_yaml_int(self, node: ScalarNode) -> int:
        digits = len(node.value.replace("_", "").lstrip("+-"))
        if digits > MAX_INT_CHARS:
            raise Refused(f"integer too long ({digits} digits; at most {MAX_INT_CHARS})",
                          node.start_mark)
        return super().construct_yaml_int(node)


InventoryLoader.add_constructor("tag:yaml.org,2002:int", InventoryLoader.construct_yaml_int)


def read(path: Path, label: str, hint: str) -> str:
    """The file's text: at most :data:`MAX_BYTES`, strictly UTF-8."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            data = f.read(MAX_BYTES + 1) if size <= MAX_BYTES else b""
    except OSError as exc:
        raise InventoryError(f"{escape(str(path), 200)}: cannot read inventory:"
                             f" {exc.strerror} ({hint})") from None
    if size > MAX_BYTES or len(data) > MAX_BYTES:
        shown = f"{size} bytes" if size > MAX_BYTES else f"more than {MAX_BYTES} bytes"
        raise InventoryError(f"{label}: {shown}: too large for an inventory (the limit is"
                             f" 1 MiB, {MAX_BYTES} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InventoryError(f"{label}:{line}: not UTF-8 text: byte 0x{data[exc.start]:02x}"
                             f" at offset {exc.start} cannot be decoded (save the file as"
                             " UTF-8)") from None


def parse(text: str, label: str) -> Any:
    """YAML to plain data with :class:`InventoryLoader`; one error line, never a traceback."""
    loader: InventoryLoader | None = None
    try:
        loader = InventoryLoader(text)  # its reader already refuses control characters
        return loader.get_single_data()
    except Refused as exc:
        raise InventoryError(f"{label}{_where(exc.problem_mark)}: {exc.problem}") from None
    except yaml.reader.ReaderError as exc:  # a position, no mark
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise InventoryError(f"{label}:{line}:{column}: invalid YAML: unacceptable"
                             f" character #x{exc.character:04x}: special characters are"
                             " not allowed") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InventoryError(f"{label}{_where(mark)}: invalid YAML:"
                             f" {escape(problem, 160)}") from None
    except Exception as exc:  # the last net: whatever else PyYAML may raise
        raise InventoryError(f"{label}: cannot parse the YAML: {type(exc).__name__}:"
                             f" {escape(str(exc))}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _where(mark: Any) -> str:
    return f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
