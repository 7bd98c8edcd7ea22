"""Bounded YAML loading for user-supplied (possibly hostile) files such as campaign files.

``load_yaml`` gives the same result as ``yaml.safe_load`` for ordinary documents, but refuses at once, with
one line naming the source, documents that would otherwise cost seconds, gigabytes or a ``RecursionError``:

* alias bombs ("billion laughs"): the size of the document *once aliases are expanded* is counted while the
  node graph is composed (each anchored node's expanded size is remembered, so counting is linear in the
  text, never exponential), and so is the number of alias uses; both are refused before any Python object
  is constructed from the graph;
* deep nesting (``[[[[...``, ``{{{{...``, indented block mappings, and depth reached through aliases):
  refused at the line and column where the limit is crossed;
* recursive aliases (an alias inside the node it names): refused, since their expansion is infinite;
* duplicate keys in any mapping (``<<`` merge keys keep their meaning: keys given explicitly override
  merged ones, but two ``<<`` keys in one mapping are a duplicate; write ``<<: [*a, *b]``);
* anything but the safe types, as ``yaml.SafeLoader``.

It uses the pure-Python loader, because the C loader (``CSafeLoader``) composes the node graph in C and cannot
be hooked in the same way. That is fast enough for files of at most 1 MiB (the caller bounds the size):
measured on a 2-core AMD EPYC development VM, a 1 MiB campaign-like document (8,809 products of 3 fields,
61,687 nodes) loads in about 1.5 s (1.3 to 1.9 s over runs; ``yaml.safe_load`` 5 to 10% less) with a peak of
about 46 MB (``yaml.safe_load`` 45 MB). The audit's alias bombs are refused in about 1 ms; 900 or 100,000
nested ``[`` in about 0.15 s. The slowest hostile input found is 60-deep flow nesting repeated on one line:
refused at ``MAX_NODES`` after about 3 s.

PyYAML's scanner and parser do not recurse (only its composer does, three Python frames a level), but the
scanner looks up to 1024 characters ahead for a possible simple key and checks every open flow level on every
token, so deep flow nesting is quadratic: 100,000 nested ``[`` take about 95 s merely to scan. Refusing at
``MAX_DEPTH`` stops that within the first 1024 characters.
"""

from __future__ import annotations

from typing import Any, NoReturn

import yaml
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from placewright.errors import InvalidInput

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_NODES", "load_yaml"]

# Most nested sequences/mappings (scalars do not count), also through aliases. A campaign needs about 4;
# 64 is far above any hand-written file, and keeps the composer's recursion (3 frames a level) and any
# recursive walk of the result far below Python's recursion limit of 1000.
MAX_DEPTH = 64

# Most nodes (scalars, sequences, mappings, keys included) once every alias is expanded. A full campaign
# (100 products, 64 scenes) has a few thousand; 100,000 bounds the memory of the composed graph (tens of MB)
# and of anything that walks the result, and refuses "billion laughs" after at most this much work.
MAX_NODES = 100_000

# Most alias uses (``*name``, ``<<: *name``) in one document. Hand-written files use a handful (shared
# defaults); a cheap second bound on alias-driven work, independent of what the aliases point at.
MAX_ALIASES = 1000

# How much of an offending key a message shows.
_MAX_SHOWN_CHARS = 60

_MERGE_TAG = "tag:yaml.org,2002:merge"
_MERGE_KEY = object()  # stands for every ``<<`` key, so that two of them in one mapping are a duplicate


def load_yaml(text: str, *, source: str) -> Any:
    """Parse one YAML document like ``yaml.safe_load``, bounded.

    Args:
        text: the YAML text (a campaign file is at most 1 MiB).
        source: what to call the text in messages, usually its path.

    Returns:
        The document as plain Python data (dicts, lists, strings, numbers, booleans, None, dates...); None for
        an empty document.

    Raises:
        InvalidInput: one line, prefixed by ``f"{source}: "``, for a YAML syntax error (``YAML syntax error at
            line L, column C: problem``), more than one document, a type that is not safe, nesting deeper than
            ``MAX_DEPTH``, more than ``MAX_NODES`` nodes once aliases are expanded, more than ``MAX_ALIASES``
            aliases, a recursive alias, or a duplicate key.
    """
    loader = None
    try:
        loader = _BoundedLoader(text, source=source)  # its reader already refuses unprintable characters
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = _one_line(exc.problem or exc.context or "invalid YAML")
        raise InvalidInput(f"{source}: YAML syntax error{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: YAML syntax error: {_one_line(str(exc))}") from None
    except RecursionError:  # last resort: the checks above should make this unreachable
        raise InvalidInput(f"{source}: nesting deeper than {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()


class _BoundedLoader(yaml.SafeLoader):
    """A ``SafeLoader`` that counts depth, expanded size and aliases while composing, and refuses duplicate keys.

    Composition is hooked in ``compose_node`` (every node and alias of the document passes there, before any
    Python object is built); duplicate keys are checked in ``construct_mapping``, against the keys the mapping
    had when composed (merging mutates mapping nodes, so they are remembered then).
    """

    def __init__(self, text: str, *, source: str) -> None:
        super().__init__(text)
        self._source = source
        self._depth = 0  # collections open around the node being composed
        self._deepest = 0  # deepest level reached inside the node being composed (through aliases too)
        self._expanded = 0  # nodes so far, aliases counted as the whole subtree they stand for
        self._aliases = 0
        # anchored node -> (expanded size, height); a node is added once fully composed, so an anchored node
        # without an entry is still being composed and an alias to it is recursive.
        self._anchored: dict[Node, tuple[int, int]] = {}
        # mapping node -> where each of its keys is written (an alias key's node is elsewhere).
        self._key_marks: dict[Node, list[yaml.Mark]] = {}
        # mapping node -> its keys as written, with their marks (merging later flattens merged keys into it).
        self._written_keys: dict[Node, list[tuple[Node, yaml.Mark]]] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        """Compose one node, refusing it before it is built if it crosses a limit."""
        event = self.peek_event()
        if index is None and isinstance(parent, MappingNode):  # a key (values have their key as index)
            self._key_marks.setdefault(parent, []).append(event.start_mark)
        if isinstance(event, AliasEvent):
            self._check_alias(event)
            return super().compose_node(parent, index)
        opens = isinstance(event, SequenceStartEvent | MappingStartEvent)
        outer_depth = self._depth
        depth = outer_depth + 1 if opens else outer_depth
        if depth > MAX_DEPTH:
            self._refuse(f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
        outer_deepest = self._deepest
        before = self._expanded
        self._depth = self._deepest = depth
        self._add_nodes(1, event.start_mark)
        node = super().compose_node(parent, index)
        if event.anchor is not None:
            self._anchored[node] = (self._expanded - before, self._deepest - outer_depth)
        if isinstance(node, MappingNode):
            marks = self._key_marks.pop(node, [])
            self._written_keys[node] = list(zip((key for key, _ in node.value), marks, strict=True))
        self._depth = outer_depth
        self._deepest = max(outer_deepest, self._deepest)
        return node

    def _check_alias(self, event: AliasEvent) -> None:
        node = self.anchors.get(event.anchor)
        if node is None:
            return  # the composer reports the undefined alias
        mark = event.start_mark
        shape = self._anchored.get(node)
        if shape is None:
            self._refuse(f"alias *{event.anchor} is inside the node it refers to (recursive)", mark)
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            self._refuse(f"more than {MAX_ALIASES} aliases", mark)
        size, height = shape
        if self._depth + height > MAX_DEPTH:
            self._refuse(f"nesting deeper than {MAX_DEPTH} levels (through alias *{event.anchor})", mark)
        self._deepest = max(self._deepest, self._depth + height)
        self._add_nodes(size, mark)

    def _add_nodes(self, count: int, mark: yaml.Mark) -> None:
        self._expanded += count
        if self._expanded <= MAX_NODES:
            return
        if self._aliases:
            raise InvalidInput(
                f"{self._source}: too many nodes once aliases are expanded (more than {MAX_NODES}): "
                "aliases nested too deeply?"
            )
        self._refuse(f"too many nodes (more than {MAX_NODES})", mark)

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, refusing a key written twice (merged keys may be overridden)."""
        written = self._written_keys.get(node)
        if written is not None and len(written) > 1:
            self.flatten_mapping(node)  # first, as it gives ``=`` keys their str tag; doing it again is a no-op
            first: dict[Any, yaml.Mark] = {}
            for key_node, mark in written:
                if key_node.tag == _MERGE_TAG:
                    key: Any = _MERGE_KEY
                elif isinstance(key_node, ScalarNode):
                    key = self.construct_object(key_node, deep=True)
                else:
                    continue  # a collection as key: unhashable, which the constructor reports
                try:
                    earlier = first.setdefault(key, mark)
                except TypeError:
                    continue
                if earlier is not mark:
                    shown = "<<" if key is _MERGE_KEY else key
                    self._refuse(f"duplicate key {_shown(shown)}", mark, f" (first at line {earlier.line + 1})")
        return super().construct_mapping(node, deep=deep)

    def _refuse(self, problem: str, mark: yaml.Mark, tail: str = "") -> NoReturn:
        raise InvalidInput(f"{self._source}: {problem} at line {mark.line + 1}, column {mark.column + 1}{tail}")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN_CHARS else text[: _MAX_SHOWN_CHARS - 3] + "..."


def _one_line(text: str) -> str:
    return " ".join(text.split())
