"""Bounded YAML loading: same results as yaml.safe_load, hostile documents refused at once with one line."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import yaml

from placewright import safe_yaml
from placewright.errors import InvalidInput
from placewright.safe_yaml import MAX_ALIASES, MAX_DEPTH, MAX_NODES, load_yaml

SOURCE = "campaign.yaml"

CAMPAIGN = """\
name: spring-olive-oil          # a comment
out: s3://my-bucket/campaigns
options:
  size: 1024x1024
  format: webp
  seed: 7
variants_per_scene: 1
products:
  - path: examples/olive-oil-bottle.jpg
  - url: https://cdn.example.com/p/soap.png
    name: soap
    surface: countertop
scenes:
  - prompt: >
      a sunlit kitchen counter,
      olive branches
    variants: 2
  - {prompt: "a picnic table", variants: 1}
"""


def refusal(text: str) -> str:
    """The one-line message ``load_yaml`` refuses ``text`` with (any other exception fails the test)."""
    with pytest.raises(InvalidInput) as caught:
        load_yaml(text, source=SOURCE)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{SOURCE}: ")
    return message


def alias_bomb(levels: int, width: int, *, sep: str = ",", item: str = '"x"') -> str:
    """``a: &a [x, x, ...]``, ``b: &b [*a, *a, ...]``, ...: ``width ** levels`` nodes once expanded."""
    lines = []
    for level in range(levels):
        name = chr(ord("a") + level)
        items = [item] * width if level == 0 else [f"*{chr(ord('a') + level - 1)}"] * width
        lines.append(f"{name}: &{name} [{sep.join(items)}]")
    return "\n".join(lines) + "\n"


def mapping_bomb(levels: int, width: int) -> str:
    """The same with mappings: ``b: &b {k0: *a, k1: *a, ...}``."""
    lines = ["a: &a {" + ", ".join(f"k{i}: lol" for i in range(width)) + "}"]
    for level in range(1, levels):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} {{" + ", ".join(f"k{i}: *{previous}" for i in range(width)) + "}")
    return "\n".join(lines) + "\n"


def nested_flow_sequences(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_flow_mappings(depth: int) -> str:
    return "{a: " * depth + "1" + "}" * depth


def nested_block_mappings(depth: int) -> str:
    return "".join(" " * level + "a:\n" for level in range(depth)) + " " * depth + "x\n"


def nested_block_sequences(depth: int) -> str:
    return "".join("  " * level + "-\n" for level in range(depth)) + "  " * depth + "x\n"


# --- ordinary documents -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(CAMPAIGN, id="campaign"),
        pytest.param("a: 1\nb: [1, 2.5, -3, 0x1f, 0o17, 1_000]\n", id="numbers"),
        pytest.param("t: [yes, no, true, False, on, off, null, ~, '', .inf, -.inf]\n", id="booleans-nulls"),
        pytest.param("d: 2024-05-01\nts: 2024-05-01T10:00:00Z\nb: !!binary aGVsbG8=\n", id="dates-binary"),
        pytest.param("s: !!set {a, b}\no: !!omap [{a: 1}, {b: 2}]\np: !!pairs [{a: 1}, {a: 2}]\n", id="set-omap"),
        pytest.param("text: |\n  line one\n  line two\nfolded: >-\n  one\n  two\n", id="block-scalars"),
        pytest.param("- a\n- - b\n  - c\n- {d: [e, {f: g}]}\n", id="nested-mixed"),
        pytest.param("plain text", id="scalar-document"),
        pytest.param("---\na: 1\n...\n", id="explicit-document-markers"),
        pytest.param("base: &base {size: 1024x1024, format: webp}\nuse: *base\nalso: [*base, *base]\n", id="aliases"),
        pytest.param("x: &x 1\ny: *x\nl: &l [1, 2]\nm: [*l, *l]\n", id="scalar-and-sequence-aliases"),
        pytest.param("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n", id="merge-key-override"),
        pytest.param("a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc: {<<: [*a, *b], z: 3}\n", id="merge-key-list"),
        pytest.param("a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b, z: 3}\n", id="merge-key-chain"),
        pytest.param("? complex key\n: value\n'quoted: key': 1\n", id="explicit-keys"),
        pytest.param(nested_flow_sequences(MAX_DEPTH), id="at-depth-limit"),
    ],
)
def test_ordinary_documents_equal_safe_load(text: str) -> None:
    assert load_yaml(text, source=SOURCE) == yaml.safe_load(text)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_document_is_none(text: str) -> None:
    assert load_yaml(text, source=SOURCE) is None


def test_aliases_and_merge_keys() -> None:
    text = (
        "defaults: &defaults {surface: table, variants: 1}\n"
        "products:\n"
        "  - {<<: *defaults, name: soap}\n"
        "  - {<<: *defaults, name: oil, variants: 2}\n"
        "shared: &shared [a, b]\n"
        "again: *shared\n"
    )
    data = load_yaml(text, source=SOURCE)
    assert data["products"] == [
        {"surface": "table", "variants": 1, "name": "soap"},
        {"surface": "table", "variants": 2, "name": "oil"},
    ]
    assert data["again"] == ["a", "b"]


def test_aliases_up_to_the_limit_are_accepted() -> None:
    text = "x: &x 1\nl: [" + ", ".join(["*x"] * MAX_ALIASES) + "]\n"
    assert load_yaml(text, source=SOURCE)["l"] == [1] * MAX_ALIASES


# --- alias bombs ------------------------------------------------------------------------------------------------

BOMB_MESSAGE = f"{SOURCE}: too many nodes once aliases are expanded (more than {MAX_NODES}): aliases nested too deeply?"


@pytest.mark.parametrize(
    ("text", "max_bytes"),
    [
        pytest.param(alias_bomb(9, 9, sep=", ", item="lol"), 403, id="403-byte-class"),
        pytest.param(alias_bomb(10, 10, sep=", ", item='"lol"'), 569, id="569-byte-class"),
        pytest.param(alias_bomb(9, 9), 403, id="compact"),
        pytest.param(mapping_bomb(6, 10), 569, id="mappings"),
    ],
)
def test_alias_bombs_are_refused_at_once(text: str, max_bytes: int) -> None:
    assert len(text) <= max_bytes
    start = time.perf_counter()
    message = refusal(text)
    elapsed = time.perf_counter() - start
    assert message == BOMB_MESSAGE
    assert elapsed < 1.0  # a refusal bound, generous: it takes about a millisecond


def test_bomb_is_refused_before_any_object_is_constructed(monkeypatch: pytest.MonkeyPatch) -> None:
    def construct_document(self: object, node: object) -> None:
        raise AssertionError("constructed a document that should have been refused while composing")

    monkeypatch.setattr(safe_yaml._BoundedLoader, "construct_document", construct_document)
    assert refusal(alias_bomb(9, 9)) == BOMB_MESSAGE


def test_too_many_aliases() -> None:
    text = "x: &x 1\nl: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"
    column = len("l: [") + (len("*x, ") * MAX_ALIASES) + 1
    assert refusal(text) == f"{SOURCE}: more than {MAX_ALIASES} aliases at line 2, column {column}"


def test_too_many_nodes_without_aliases() -> None:
    text = "[" + "1," * MAX_NODES + "]"
    # the outer sequence is node 1, so the item at offset 1 + 2 * (MAX_NODES - 1) is one too many
    column = 1 + 2 * (MAX_NODES - 1) + 1
    assert refusal(text) == f"{SOURCE}: too many nodes (more than {MAX_NODES}) at line 1, column {column}"


@pytest.mark.parametrize(
    ("text", "column"),
    [
        pytest.param("a: &a [1, *a]\n", 11, id="sequence"),
        pytest.param("a: &a {b: *a}\n", 11, id="mapping"),
        pytest.param("a: &a {<<: *a}\n", 12, id="merge-key"),
    ],
)
def test_recursive_aliases_are_refused(text: str, column: int) -> None:
    assert refusal(text) == f"{SOURCE}: alias *a is inside the node it refers to (recursive) at line 1, column {column}"


# --- nesting depth ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param(nested_flow_sequences(900), "line 1, column 65", id="900-["),
        pytest.param(nested_flow_sequences(100_000), "line 1, column 65", id="100000-["),
        pytest.param("[" * 100_000, "line 1, column 65", id="100000-[-unclosed"),
        pytest.param("{" * 900 + "}" * 900, "line 1, column 65", id="900-{"),
        pytest.param(nested_flow_mappings(900), f"line 1, column {len('{a: ') * MAX_DEPTH + 1}", id="900-{a:"),
        pytest.param(nested_block_mappings(200), "line 65, column 65", id="200-block-mappings"),
        pytest.param(nested_block_sequences(200), "line 65, column 129", id="200-block-sequences"),
        pytest.param("- " * 200 + "x\n", f"line 1, column {2 * MAX_DEPTH + 1}", id="200-compact-sequences"),
    ],
)
def test_deep_nesting_is_refused_in_one_line(text: str, where: str) -> None:
    assert refusal(text) == f"{SOURCE}: nesting deeper than {MAX_DEPTH} levels at {where}"


@pytest.mark.parametrize(
    "nested",
    [nested_flow_sequences, nested_flow_mappings, nested_block_mappings, nested_block_sequences],
)
def test_depth_limit_is_exact(nested: Callable[[int], str]) -> None:
    at_limit = nested(MAX_DEPTH)
    assert load_yaml(at_limit, source=SOURCE) == yaml.safe_load(at_limit)
    assert refusal(nested(MAX_DEPTH + 1)).startswith(f"{SOURCE}: nesting deeper than {MAX_DEPTH} levels at line ")


def test_depth_through_aliases_counts() -> None:
    inner, outer = 40, MAX_DEPTH - 40
    anchored = f"x: &x {nested_flow_sequences(inner)}\n"
    at_limit = anchored + "y: " + "[" * (outer - 1) + "*x" + "]" * (outer - 1) + "\n"
    assert load_yaml(at_limit, source=SOURCE) == yaml.safe_load(at_limit)  # top mapping + 23 + 40 = 64
    too_deep = anchored + "y: " + "[" * outer + "*x" + "]" * outer + "\n"
    column = len("y: ") + outer + 1
    assert refusal(too_deep) == (
        f"{SOURCE}: nesting deeper than {MAX_DEPTH} levels (through alias *x) at line 2, column {column}"
    )


def test_alias_chains_count_as_depth() -> None:
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 200)]
    message = refusal("\n".join(lines) + "\n")
    assert message.startswith(f"{SOURCE}: nesting deeper than {MAX_DEPTH} levels (through alias *a")


def test_recursion_error_is_a_last_resort_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def get_single_data(self: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(safe_yaml._BoundedLoader, "get_single_data", get_single_data)
    assert refusal("a: 1\n") == f"{SOURCE}: nesting deeper than {MAX_DEPTH} levels"


# --- duplicate keys ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "name: a\nout: x\nscenes: []\nproducts: []\nseed: 1\nsize: 2\nname: b\n",
            "duplicate key 'name' at line 7, column 1 (first at line 1)",
            id="top-level",
        ),
        pytest.param(
            "options:\n  size: 1\n  seed: 2\n  size: 3\n",
            "duplicate key 'size' at line 4, column 3 (first at line 2)",
            id="nested",
        ),
        pytest.param(
            "products:\n  - name: a\n    path: x\n  - name: b\n    path: y\n    name: c\n",
            "duplicate key 'name' at line 6, column 5 (first at line 4)",
            id="in-list-item",
        ),
        pytest.param("o: {a: 1, b: 2, a: 3}\n", "duplicate key 'a' at line 1, column 17 (first at line 1)", id="flow"),
        pytest.param(
            "base: &b {x: 1}\nd:\n  <<: *b\n  y: 1\n  y: 2\n",
            "duplicate key 'y' at line 5, column 3 (first at line 4)",
            id="beside-merge-key",
        ),
        pytest.param("1: a\n0x1: b\n", "duplicate key 1 at line 2, column 1 (first at line 1)", id="equal-values"),
        pytest.param(
            "&k a: 1\nb: 2\n*k : 3\n", "duplicate key 'a' at line 3, column 1 (first at line 1)", id="alias-key"
        ),
        pytest.param(
            "a: &a {x: 1}\nb: &b {y: 1}\nc:\n  <<: *a\n  <<: *b\n",
            "duplicate key '<<' at line 5, column 3 (first at line 4)",
            id="two-merge-keys",
        ),
    ],
)
def test_duplicate_keys_are_refused(text: str, expected: str) -> None:
    assert refusal(text) == f"{SOURCE}: {expected}"


def test_merged_mapping_reused_after_merging_is_not_a_duplicate() -> None:
    # merging flattens the inner mapping node in place; its own keys must still be judged as written
    text = "base: &base {surface: t}\nouter: {deep: &x {<<: *base, surface: u}}\nuse: {<<: *x}\n"
    expected = {"base": {"surface": "t"}, "outer": {"deep": {"surface": "u"}}, "use": {"surface": "u"}}
    assert load_yaml(text, source=SOURCE) == yaml.safe_load(text) == expected


# --- syntax errors and unsafe types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "a: [1, 2\n",
            "YAML syntax error at line 2, column 1: expected ',' or ']', but got '<stream end>'",
            id="unclosed-flow",
        ),
        pytest.param(
            "name: x\n    variants: 2\n",
            "YAML syntax error at line 2, column 13: mapping values are not allowed here",
            id="bad-indent",
        ),
        pytest.param("a: *nope\n", "YAML syntax error at line 1, column 4: found undefined alias 'nope'", id="alias"),
        pytest.param(
            "a: 1\n---\nb: 2\n", "YAML syntax error at line 2, column 1: but found another document", id="docs"
        ),
        pytest.param(
            "a: !!python/object/apply:os.system [echo hi]\n",
            "YAML syntax error at line 1, column 4: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/object/apply:os.system'",
            id="unsafe-tag",
        ),
        pytest.param(
            "a: \x07\n",
            "YAML syntax error: unacceptable character #x0007: special characters are not allowed "
            'in "<unicode string>", position 3',
            id="no-mark",
        ),
    ],
)
def test_syntax_errors_keep_their_form(text: str, expected: str) -> None:
    assert refusal(text) == f"{SOURCE}: {expected}"
