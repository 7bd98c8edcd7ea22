"""The access roots: what a run that arrived from outside may read, and where it may publish."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from placewright.access import UNRESTRICTED, Access, is_under, url_segments
from placewright.campaign import load_campaign, parse_campaign
from placewright.errors import InvalidInput
from placewright.plan import plan_run
from placewright.request import RunRequest
from placewright.settings import Settings


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``root/`` (the working directory) holding ``inside.png`` and ``sub/``; ``outside.png`` beside it."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    for path in (root / "inside.png", root / "sub" / "deep.png", tmp_path / "outside.png"):
        Image.new("RGB", (64, 64), "gray").save(path)
    monkeypatch.chdir(root)
    return root


# --- the rule ------------------------------------------------------------------------------------------------------


def test_local_paths_inside_and_outside(tree: Path) -> None:
    roots = ["."]
    for inside in ("inside.png", "./sub/deep.png", str(tree / "sub"), str(tree), f"file://{tree}/inside.png"):
        assert is_under(inside, roots), inside
    for outside in ("../outside.png", str(tree.parent / "outside.png"), "/etc/passwd", f"file://{tree.parent}"):
        assert not is_under(outside, roots), outside


def test_dot_dot_is_resolved_before_comparing(tree: Path) -> None:
    assert is_under("sub/../inside.png", ["."])
    assert not is_under("sub/../../outside.png", ["."])
    assert not is_under(str(tree / "sub" / ".." / ".." / "outside.png"), [str(tree)])
    assert not is_under("../../etc/passwd", ["."])


def test_a_root_is_not_a_name_prefix(tree: Path) -> None:
    (tree.parent / "root-evil").mkdir()
    assert not is_under(str(tree.parent / "root-evil" / "x.png"), [str(tree)])
    assert is_under(str(tree / "x.png"), [str(tree) + "/"])


def test_a_symlink_out_of_a_root_is_outside(tree: Path) -> None:
    (tree / "escape.png").symlink_to(tree.parent / "outside.png")
    (tree / "escape-dir").symlink_to(tree.parent)
    assert not is_under("escape.png", ["."])
    assert not is_under("escape-dir/outside.png", ["."])
    assert is_under("escape-dir/outside.png", [str(tree.parent)])


def test_a_symlinked_root_is_compared_by_its_real_path(tree: Path) -> None:
    (tree.parent / "alias").symlink_to(tree)
    assert is_under(str(tree / "inside.png"), [str(tree.parent / "alias")])
    assert is_under(str(tree.parent / "alias" / "inside.png"), [str(tree)])


def test_relative_roots_are_relative_to_the_working_directory(tree: Path) -> None:
    assert is_under(str(tree / "sub" / "deep.png"), ["sub"])
    assert not is_under(str(tree / "inside.png"), ["sub"])
    os.chdir(tree / "sub")
    assert not is_under(str(tree / "inside.png"), ["."]), "the root moved with the working directory"


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("s3://bucket/a/b.png", ("s3", "bucket", "a", "b.png")),
        ("S3://bucket//a/./b.png", ("s3", "bucket", "a", "b.png")),
        ("s3a://bucket/a", ("s3", "bucket", "a")),
        ("gcs://bucket", ("gs", "bucket")),
        ("s3://bucket/a/../b", None),
        ("s3://bucket/..", None),
        ("simplecache::s3://bucket/a", None),
        ("s3://", None),
        ("plain/path", None),
    ],
)
def test_url_segments(url: str, parts: tuple[str, ...] | None) -> None:
    assert url_segments(url) == parts


def test_url_prefixes() -> None:
    roots = ["s3://bucket/products", "gs://other"]
    assert is_under("s3://bucket/products/soap.png", roots)
    assert is_under("s3://bucket/products", roots)
    assert is_under("s3a://bucket/products/x/y.png", roots), "s3a:// is the same store"
    assert is_under("gs://other/anything.png", roots)
    assert not is_under("s3://bucket/products-evil/soap.png", roots), "segments, not characters"
    assert not is_under("s3://bucket/other/soap.png", roots)
    assert not is_under("s3://bucket/products/../secrets/key.png", roots)
    assert not is_under("gs://bucket/products/soap.png", roots), "another store"
    assert not is_under("memory://bucket/products/soap.png", roots)
    assert not is_under("simplecache::s3://bucket/products/soap.png", roots)


def test_an_evil_bucket_does_not_match_its_prefix() -> None:
    assert is_under("s3://bucket/x.png", ["s3://bucket"])
    assert not is_under("s3://bucket-evil/x.png", ["s3://bucket"])
    assert not is_under("s3://bucketx", ["s3://bucket"])


def test_local_roots_and_url_roots_do_not_mix(tree: Path) -> None:
    assert not is_under("s3://bucket/x.png", ["."])
    assert not is_under("inside.png", ["s3://bucket"])
    assert is_under("inside.png", ["s3://bucket", f"file://{tree}"])


# --- the policy ----------------------------------------------------------------------------------------------------


def _remote(**access: object) -> Access:
    settings = Settings.model_validate({"out_dir": "published", "access": access})
    return Access.remote(settings)


def test_unrestricted_allows_everything() -> None:
    assert not UNRESTRICTED.restricted
    UNRESTRICTED.check_input("/etc/passwd", what="product")
    UNRESTRICTED.check_output("/etc", what="out")


def test_remote_inputs(tree: Path) -> None:
    access = _remote()
    access.check_input("inside.png", what="product")
    access.check_input("https://cdn.example.com/p.png", what="product")  # the URL guard's business
    with pytest.raises(InvalidInput) as caught:
        access.check_input("../../etc/passwd", what="product")
    assert str(caught.value) == "product ../../etc/passwd is outside access.input_roots (['.'])"
    with pytest.raises(
        InvalidInput, match=r"^background s3://bucket/b\.png is outside access\.input_roots \(\['\.'\]\)$"
    ):
        access.check_input("s3://bucket/b.png", what="background")
    with pytest.raises(InvalidInput, match=r"is outside access\.input_roots"):
        access.check_input("ftp://internal/b.png", what="background")
    _remote(input_roots=["s3://bucket"]).check_input("s3://bucket/b.png", what="background")


def test_remote_outputs_default_to_out_dir_only(tree: Path) -> None:
    access = _remote()
    access.check_output("published", what="out")
    access.check_output(str(tree / "published" / "campaigns"), what="out")
    with pytest.raises(InvalidInput) as caught:
        access.check_output("/tmp/elsewhere", what="out")
    assert str(caught.value) == "out /tmp/elsewhere is outside access.output_roots ([]) and out_dir ('published')"
    for outside in (".", "published-evil", "published/../x", "s3://bucket/x"):
        with pytest.raises(InvalidInput, match=r"is outside access\.output_roots"):
            access.check_output(outside, what="out")


def test_remote_output_roots(tree: Path) -> None:
    access = _remote(output_roots=["s3://ads/adhoc", str(tree / "sub")])
    access.check_output("s3://ads/adhoc/spring", what="out")
    access.check_output("sub/x", what="out")
    access.check_output("published", what="out")  # out_dir stays allowed
    with pytest.raises(InvalidInput, match=r"\['s3://ads/adhoc', '.*/sub'\]\) and out_dir \('published'\)$"):
        access.check_output("s3://ads-evil/adhoc", what="out")


# --- where it is applied: planning a run, loading a campaign ----------------------------------------------------------


def test_plan_run_refuses_before_reading(tree: Path) -> None:
    access = _remote()
    downloads = tree.parent / "downloads"
    settings = Settings(out_dir="published")
    cases = [
        ({"product": "../../etc/passwd"}, "product ../../etc/passwd is outside access.input_roots (['.'])"),
        (
            {"product": "inside.png", "backgrounds": ["inside.png", "../outside.png"]},
            "background ../outside.png is outside access.input_roots (['.'])",
        ),
        (
            {"product": "inside.png", "backgrounds": ["s3://no-such-bucket/b.png"]},
            "background s3://no-such-bucket/b.png is outside access.input_roots (['.'])",
        ),
        (
            {"product": "inside.png", "out": str(tree.parent / "elsewhere")},
            f"out {tree.parent / 'elsewhere'} is outside access.output_roots ([]) and out_dir ('published')",
        ),
    ]
    for fields, message in cases:
        with pytest.raises(InvalidInput) as caught:
            plan_run(RunRequest.model_validate(fields), settings, downloads=downloads, access=access)
        assert str(caught.value) == message
    assert not (tree / "published").exists() and not downloads.exists(), "nothing read, fetched or written"
    plan = plan_run(RunRequest(product="inside.png"), settings, downloads=downloads, access=access)
    assert plan.out == "published"
    plan_run(RunRequest(product=str(tree.parent / "outside.png")), settings, downloads=downloads)  # the CLI


def _campaign(tree: Path, **changes: object) -> dict:
    return {
        "name": "c",
        "products": [{"path": "inside.png"}],
        "scenes": [{"prompt": "table"}],
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"products": [{"path": "inside.png"}, {"path": "../../etc/hosts", "name": "x"}]},
            "campaign: products[1].path: ../../etc/hosts is outside access.input_roots (['.'])",
        ),
        (
            {"products": [{"path": "../no-such-file.png"}]},
            "campaign: products[0].path: ../no-such-file.png is outside access.input_roots (['.'])",
        ),
        (
            {"products": [{"url": "s3://bucket/p.png"}]},
            "campaign: products[0].url: s3://bucket/p.png is outside access.input_roots (['.'])",
        ),
        (
            {"products": [{"url": "file:///etc/passwd", "name": "p"}]},
            "campaign: products[0].url: file:///etc/passwd is outside access.input_roots (['.'])",
        ),
        (
            {"scenes": [{"background": "../outside.png"}]},
            "campaign: scenes[0].background: ../outside.png is outside access.input_roots (['.'])",
        ),
        (
            {"scenes": [{"background": "s3://bucket-evil/b.png"}]},
            "campaign: scenes[0].background: s3://bucket-evil/b.png is outside access.input_roots (['.'])",
        ),
        (
            {"out": "../elsewhere"},
            "campaign: out: ../elsewhere is outside access.output_roots ([]) and out_dir ('published')",
        ),
        (
            {"out": "s3://ads/x"},
            "campaign: out: s3://ads/x is outside access.output_roots ([]) and out_dir ('published')",
        ),
    ],
)
def test_a_remote_campaign_is_held_to_the_roots(tree: Path, changes: dict, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_campaign(_campaign(tree, **changes), base_dir=tree, source="campaign", access=_remote())
    assert str(caught.value) == message, "checked before the file is looked at: no 'file not found'"
    try:  # the CLI: anywhere (a missing file is still missing)
        parse_campaign(_campaign(tree, **changes), base_dir=tree, source="campaign")
    except InvalidInput as exc:
        assert "access" not in str(exc)


def test_a_remote_campaign_inside_the_roots(tree: Path) -> None:
    access = _remote(input_roots=[".", "s3://bucket/shared"])
    spec = parse_campaign(
        _campaign(
            tree,
            products=[
                {"path": "sub/deep.png"},
                {"url": "s3://bucket/shared/p.png"},
                {"url": "https://x.example/q.png"},
            ],
            scenes=[{"background": "inside.png"}, {"background": "s3://bucket/shared/b.png"}],
            out="published/campaigns",
        ),
        base_dir=tree,
        source="campaign",
        access=access,
    )
    assert [p.source for p in spec.products] == [
        str(tree / "sub" / "deep.png"),
        "s3://bucket/shared/p.png",
        "https://x.example/q.png",
    ]
    assert [s.background for s in spec.scenes] == [str(tree / "inside.png"), "s3://bucket/shared/b.png"]


def test_a_remote_campaign_file_must_be_inside_the_roots(tree: Path) -> None:
    (tree.parent / "campaign.yaml").write_text("name: c\nproducts: [{path: root/inside.png}]\nscenes: [{prompt: x}]\n")
    with pytest.raises(InvalidInput) as caught:
        load_campaign("../campaign.yaml", access=_remote())
    assert str(caught.value) == "../campaign.yaml: campaign file is outside access.input_roots (['.'])"
    with pytest.raises(InvalidInput, match=r"^\.\./missing\.yaml: campaign file is outside"):
        load_campaign("../missing.yaml", access=_remote())
    assert load_campaign("../campaign.yaml").products[0].path == str(tree / "inside.png")  # the CLI
    (tree / "campaign.yaml").write_text("name: c\nproducts: [{path: ../outside.png}]\nscenes: [{prompt: x}]\n")
    with pytest.raises(InvalidInput) as caught:
        load_campaign(f"file://{tree}/campaign.yaml", access=_remote())
    assert str(caught.value) == (
        f"file://{tree}/campaign.yaml: products[0].path: ../outside.png is outside access.input_roots (['.'])"
    )
