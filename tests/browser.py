"""Headless Chromium (Python playwright) on the Prefect 3.8.8 UI's "Custom run" form of a deployment.

The form lives at ``<server>/v2/deployments/deployment/<id>/run`` (the V2 UI; ``/`` redirects to ``/v2/...``,
the V1 UI still answers under the same paths without ``/v2``). Every parameter is a block of::

    <div>                                   the field
      <div><div><label data-slot="label">Title (Optional)</label><p>description</p></div>
           <div><button>Open menu</button></div></div>          "Use JSON Input", "Omit value"
      <fieldset>the control</fieldset>
    </div>

and the control is one of: ``textarea`` (a string), ``input[type=number]`` (an integer or a number),
``button[role=switch]`` (a boolean), ``button[aria-haspopup=listbox]`` (an ``enum``: a popover of
``role=option`` items), a card of nested fields (an object), a card of sortable items with an "Add item" button
(an array), a CodeMirror editor (``[role=textbox][data-language=json]``, after "Use JSON Input") or, for an
``anyOf`` such as ``X | None``, a tab list (``role=tab``: "str", "int", the model's title, "None") above the
control of the selected tab ("Property is type "None"" for None).

:func:`form_fields` reads all of that into :class:`FieldInfo` records named by a dotted path of the labels
(``request.format``, ``request.prompts[0]``); :func:`fill_field`, :func:`choose_variant`, :func:`add_item`,
:func:`use_json_input` and :func:`submit_run` fill the form in and submit it as a user would.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium's own connections are refused by a closed network and slow it.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# The form renders 1-3 s after navigation (the UI fetches the deployment, then its schema).
FORM_TIMEOUT_MS = 30_000
# What the empty enum select shows.
SELECT_PLACEHOLDER = "Select"

# Reads every field of the form (see the module docstring): runs in the page.
_WALK_JS = r"""
() => {
  const heading = [...document.querySelectorAll("form h3")].find((h) => h.textContent.trim() === "Parameters");
  if (!heading) return null;
  const scope = heading.parentElement;
  const fieldOf = (label) => {
    const wrapper = label.parentElement?.parentElement?.parentElement;
    const fieldset = wrapper && [...wrapper.children].find((c) => c.tagName === "FIELDSET");
    return fieldset ? { wrapper, fieldset } : null;
  };
  const fields = [...scope.querySelectorAll("label[data-slot=label]")].map((label) => ({ label, ...fieldOf(label) }))
    .filter((f) => f.wrapper);
  const byWrapper = new Map(fields.map((f) => [f.wrapper, f]));
  const segment = (label) => label.textContent.replace(/\s*\(Optional\)\s*$/, "").trim();
  const isItem = (el) => [...el.children].some((c) => c.getAttribute("aria-roledescription") === "sortable");
  const pathOf = (el) => {
    const parts = [];
    for (let node = el; node && node !== scope; node = node.parentElement) {
      if (byWrapper.has(node)) parts.unshift(segment(byWrapper.get(node).label));
      else if (isItem(node)) {
        const items = [...node.parentElement.children].filter(isItem);
        parts.unshift(`[${items.indexOf(node)}]`);
      }
    }
    return parts;
  };
  const describe = (box) => {
    const direct = (selector) => [...box.children].find((c) => c.matches(selector));
    const tabs = direct("[data-slot=tabs]");
    if (tabs) {
      const tabButtons = [...tabs.querySelectorAll("[role=tab]")].filter((t) => t.closest("[data-slot=tabs]") === tabs);
      const active = tabButtons.find((t) => t.getAttribute("aria-selected") === "true");
      const panel = active && document.getElementById(active.getAttribute("aria-controls"));
      const inner = panel && panel.querySelector("fieldset");
      const found = inner ? describe(inner) : { kind: "other" };
      const variants = tabButtons.map((t) => t.textContent.trim());
      return { ...found, variants, variant: active?.textContent.trim() ?? null, tabIds: tabButtons.map((t) => t.id) };
    }
    const text = direct("textarea, input:not([type]), input[type=text]");
    if (text) return { kind: "text", value: text.value, controlId: text.id };
    const number = direct("input[type=number]");
    if (number) return { kind: "number", value: number.value, controlId: number.id };
    const toggle = direct("button[role=switch]");
    if (toggle) return { kind: "checkbox", value: toggle.getAttribute("aria-checked") === "true",
                         controlId: toggle.id };
    const select = box.querySelector(":scope > div > button[aria-haspopup=listbox]");
    if (select) return { kind: "select", value: select.textContent.trim(), controlId: select.id };
    const editor = box.querySelector("[role=textbox][data-language=json]");
    if (editor) return { kind: "json", value: editor.innerText, controlId: editor.closest("[id]")?.id ?? null };
    const none = direct("p");
    if (none && none.textContent.trim() === 'Property is type "None"') return { kind: "null" };
    const card = direct("[data-slot=card]");
    const addButtons = [...scope.querySelectorAll("button")].filter((b) => b.textContent.trim() === "Add item");
    const own = addButtons.find((b) => b.closest("[data-slot=card]") === card);
    if (card && own) return { kind: "list", addIndex: addButtons.indexOf(own) };
    if (card || box.querySelector("label[data-slot=label]")) return { kind: "object" };
    return { kind: "other", html: box.innerHTML.slice(0, 300) };
  };
  const out = [];
  for (const f of fields) {
    const menu = [...f.wrapper.children][0]?.querySelector("[data-slot=dropdown-menu-trigger]");
    out.push({ path: pathOf(f.wrapper), label: f.label.textContent.trim(), menuId: menu?.id ?? null,
               description: f.label.nextElementSibling?.textContent.trim() ?? null, ...describe(f.fieldset) });
  }
  // List items have no label of their own: one entry per item.
  for (const item of [...scope.querySelectorAll("*")].filter(isItem)) {
    const box = [...item.children].find((c) => c.tagName === "DIV");
    if (box) {
      out.push({ path: pathOf(item), label: "", description: null, ...describe(box) });
    }
  }
  return out;
}
"""


@dataclass(frozen=True)
class FieldInfo:
    """One field of the run form, as the page shows it now.

    Attributes:
        path: the labels from the parameter down, lower-cased, spaces as ``_`` and without "(Optional)"
            (``request.size.width``); list items as ``[i]`` (``request.prompts[0]``). Pydantic gives a field whose
            type is a model no title: ``x: Model`` shows the model's title (``spec.opts``), ``x: Model | None``
            shows "Field" (``request.field``); ``Field(title=...)`` sets the label.
        label: the label's text, e.g. ``"Width (Optional)"`` ("(Optional)": not in the schema's ``required``).
        kind: ``text``, ``number``, ``checkbox``, ``select``, ``json``, ``object``, ``list``, ``null`` (the
            "None" tab of an ``anyOf`` is selected) or ``other``.
        value: what the control shows: ``str`` (text, json, select; None for a select showing its placeholder),
            ``int``/``float``/None (number), ``bool`` (checkbox), the items' values (list), None otherwise.
        options: a select's choices, in order (read by opening it).
        variants: the tabs of an ``anyOf`` field (``("str", "None")``), empty for other fields.
        variant: the selected tab, or None.
        description: the text under the label (the field's schema description).
        control_id: the DOM id of the control (valid until the form re-renders the field).
        tab_ids: the DOM ids of the ``variants``' tabs.
        add_index: a list's "Add item" button: its index among the form's "Add item" buttons.
        menu_id: the DOM id of the field's ⋮ menu button ("Use JSON Input", "Omit value"); None for list items.
    """

    path: str
    label: str
    kind: str
    value: Any = None
    options: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    variant: str | None = None
    description: str | None = None
    control_id: str | None = None
    tab_ids: tuple[str, ...] = ()
    add_index: int | None = None
    menu_id: str | None = None

    @property
    def optional(self) -> bool:
        """Whether the label says "(Optional)"."""
        return self.label.endswith("(Optional)")


class FormError(AssertionError):
    """The form is not what the helpers expect, or the UI refused to submit it."""


@contextlib.contextmanager
def chromium(executable: str = CHROMIUM, viewport: tuple[int, int] = (1400, 1000)) -> Iterator[Page]:
    """A fresh page of a headless Chromium (the system's, driven by playwright), closed on exit.

    Args:
        executable: the Chromium binary; playwright's own browser download is not used.
        viewport: the page's width and height in CSS pixels.

    Yields:
        A page; ``page.context.browser`` is the browser.

    Raises:
        FileNotFoundError: there is no Chromium at ``executable`` (install it with ``apt-get install -y chromium``).
    """
    if not Path(executable).exists() and not shutil.which(executable):
        raise FileNotFoundError(f"no Chromium at {executable}: install it with `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        try:
            yield browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        finally:
            browser.close()


def run_form_url(ui_url: str, deployment_id: UUID | str) -> str:
    """The "Custom run" page of a deployment; ``ui_url`` is the server's root (``http://127.0.0.1:4200``)."""
    return f"{ui_url.rstrip('/')}/v2/deployments/deployment/{deployment_id}/run"


def open_run_form(page: Page, ui_url: str, deployment_id: UUID | str) -> None:
    """Open the deployment's "Custom run" form and wait until its parameter fields are rendered.

    Args:
        page: a playwright page.
        ui_url: the Prefect server's root URL (the API's URL without ``/api``).
        deployment_id: the deployment's id.
    """
    page.goto(run_form_url(ui_url, deployment_id))
    page.get_by_role("button", name="Submit").wait_for(timeout=FORM_TIMEOUT_MS)
    # The parameters section shows a skeleton until the deployment's schema has loaded.
    page.locator("form fieldset").first.wait_for(timeout=FORM_TIMEOUT_MS)


def _path(parts: list[str]) -> str:
    text = ""
    for part in parts:
        if part.startswith("["):
            text += part
        else:
            text += ("." if text else "") + re.sub(r"\s+", "_", part.strip().lower())
    return text


def _number(text: str) -> int | float | None:
    if text == "":
        return None
    number = float(text)
    return int(number) if number.is_integer() and "." not in text else number


def _select_options(page: Page, control_id: str) -> tuple[str, ...]:
    trigger = page.locator(f"[id='{control_id}']")
    trigger.click()
    options = page.get_by_role("listbox").get_by_role("option")
    options.first.wait_for()
    texts = tuple(text.strip() for text in options.all_inner_texts())
    page.keyboard.press("Escape")
    page.get_by_role("listbox").wait_for(state="detached")
    return texts


def form_fields(page: Page, read_options: bool = True) -> list[FieldInfo]:
    """Every parameter field of the open run form in page order, then every list item (``path[i]``).

    Args:
        page: a page showing the run form (see :func:`open_run_form`).
        read_options: open each select to read its choices (and close it again).

    Returns:
        One :class:`FieldInfo` per field and per list item.

    Raises:
        FormError: the page shows no "Parameters" section.
    """
    found = page.evaluate(_WALK_JS)
    if found is None:
        raise FormError(f"no Parameters section on {page.url}")
    raw = {_path(entry["path"]): entry for entry in found}
    fields = []
    for path, entry in raw.items():
        kind, value = entry["kind"], entry.get("value")
        if kind == "number":
            value = _number(value)
        elif kind == "select" and value == SELECT_PLACEHOLDER:
            value = None
        elif kind == "list":
            items = {int(m[1]): p for p in raw if (m := re.fullmatch(re.escape(path) + r"\[(\d+)\]", p))}
            value = [raw[items[index]].get("value") for index in sorted(items)]
        options = _select_options(page, entry["controlId"]) if kind == "select" and read_options else ()
        fields.append(
            FieldInfo(
                path=path,
                label=entry["label"],
                kind=kind,
                value=value,
                options=options,
                variants=tuple(entry.get("variants", ())),
                variant=entry.get("variant"),
                description=entry.get("description") or None,
                control_id=entry.get("controlId"),
                tab_ids=tuple(entry.get("tabIds", ())),
                add_index=entry.get("addIndex"),
                menu_id=entry.get("menuId"),
            )
        )
    return fields


def field(page: Page, path: str, read_options: bool = True) -> FieldInfo:
    """The field at ``path`` (see :attr:`FieldInfo.path`).

    Raises:
        FormError: no field has that path (the message lists those that do).
    """
    fields = {f.path: f for f in form_fields(page, read_options=read_options)}
    if path not in fields:
        raise FormError(f"no field {path!r} in the form; its fields: {sorted(fields)}")
    return fields[path]


def choose_variant(page: Page, path: str, variant: str) -> FieldInfo:
    """Select the tab ``variant`` ("str", "int", a model's title, "None") of an ``anyOf`` field; returns the field.

    Raises:
        FormError: the field has no such tab.
    """
    info = field(page, path, read_options=False)
    if variant not in info.variants:
        raise FormError(f"{path} has tabs {info.variants}, not {variant!r}")
    if info.variant != variant:
        page.locator(f"[id='{info.tab_ids[info.variants.index(variant)]}']").click()
    return field(page, path, read_options=False)


def add_item(page: Page, path: str) -> None:
    """Click "Add item" of the list field at ``path``."""
    info = field(page, path, read_options=False)
    if info.kind != "list" or info.add_index is None:
        raise FormError(f"{path} is a {info.kind} field, not a list")
    page.locator("form").get_by_role("button", name="Add item", exact=True).nth(info.add_index).click()


def use_json_input(page: Page, path: str) -> FieldInfo:
    """Switch the field at ``path`` to a JSON editor (its ⋮ menu, "Use JSON Input"); returns the field."""
    info = field(page, path, read_options=False)
    if info.kind != "json":
        if info.menu_id is None:
            raise FormError(f"{path} has no menu")
        page.locator(f"[id='{info.menu_id}']").click()
        page.get_by_role("menuitem", name="Use JSON Input").click()
        deadline = time.monotonic() + FORM_TIMEOUT_MS / 1000
        while (info := field(page, path, read_options=False)).kind != "json":  # the editor mounts a moment later
            if time.monotonic() > deadline:
                raise FormError(f"{path} shows no JSON editor after 'Use JSON Input' ({info.kind})")
            page.wait_for_timeout(100)
    return info


def fill_field(page: Page, path: str, value: Any) -> None:
    """Set the field at ``path`` as a user would: type text or a number, flip a switch, pick an option.

    An ``anyOf`` field first gets its tab: "None" for ``value=None``, else its only other tab (call
    :func:`choose_variant` first where there are several). A list gets ``value`` item by item (items are added
    as needed; lists of plain values only); an object, ``value``'s keys as paths below it (``{"width": 640}``).
    A JSON editor gets ``json.dumps(value)``.

    Raises:
        FormError: the field cannot take ``value`` this way.
    """
    info = field(page, path, read_options=False)
    if info.variants:
        if value is None:
            if "None" not in info.variants:
                raise FormError(f"{path} cannot be None: its tabs are {info.variants}")
            choose_variant(page, path, "None")
            return
        if info.variant == "None":
            others = [v for v in info.variants if v != "None"]
            if len(others) != 1:
                raise FormError(f"{path}: choose one of {others} with choose_variant() first")
            info = choose_variant(page, path, others[0])
    control = page.locator(f"[id='{info.control_id}']") if info.control_id else None
    if info.kind in ("text", "number") and control is not None:
        control.fill("" if value is None else str(value))
    elif info.kind == "checkbox" and control is not None:
        if bool(value) != info.value:
            control.click()
    elif info.kind == "select" and control is not None:
        control.click()
        page.get_by_role("listbox").get_by_role("option", name=str(value), exact=True).click()
        page.get_by_role("listbox").wait_for(state="detached")
    elif info.kind == "json" and control is not None:
        editor = control.locator("[role=textbox]")
        editor.click()
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.insert_text(json.dumps(value))
    elif info.kind == "object" and isinstance(value, dict):
        for key, item in value.items():
            fill_field(page, f"{path}.{key}", item)
    elif info.kind == "list":
        values = list(value)
        for _ in range(len(values) - len(info.value or [])):
            add_item(page, path)
        for index, item in enumerate(values):
            fill_field(page, f"{path}[{index}]", item)
    else:
        raise FormError(f"cannot fill {path}: a {info.kind} field")


# Presses of Submit while the server answers 503 (busy), before giving up.
BUSY_SUBMITS = 3


def submit_run(page: Page, timeout_ms: float = FORM_TIMEOUT_MS) -> UUID:
    """Click "Submit" and return the id of the flow run the UI created.

    The UI checks the values (``POST /api/ui/schemas/validate``), then posts them to
    ``/api/deployments/<id>/create_flow_run`` and goes back to the deployment's page.

    Raises:
        FormError: the UI created no flow run (its messages on the page are quoted).
    """

    def created(response: Any) -> bool:
        return response.request.method == "POST" and response.url.endswith("/create_flow_run")

    for attempt in range(1, BUSY_SUBMITS + 1):
        try:
            with page.expect_response(created, timeout=timeout_ms) as answer:
                page.locator("form").get_by_role("button", name="Submit", exact=True).click()
        except Exception as error:  # playwright's TimeoutError: the form did not post
            shown = page.locator("form").inner_text()
            raise FormError(f"the form created no flow run ({error.__class__.__name__}); it shows:\n{shown}") from error
        response = answer.value
        # A SQLite-backed server answers 503 while its database is busy (a loaded 2-core machine); the form
        # stays filled in, and a person would press Submit again.
        if response.status == 503 and attempt < BUSY_SUBMITS:
            page.wait_for_timeout(1000 * attempt)
            continue
        if not response.ok:
            raise FormError(f"create_flow_run answered {response.status}: {response.text()}")
        return UUID(response.json()["id"])
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class ShownImage:
    """An ``<img>`` of a page once it has loaded: its alt text, source and decoded width (0: it did not load)."""

    alt: str
    src: str
    natural_width: int


def images_shown(page: Page, url: str, *, at_least: int = 1, timeout_ms: float = FORM_TIMEOUT_MS) -> list[ShownImage]:
    """Open ``url`` and return every image on it after it has loaded (waits for ``at_least`` images to appear).

    Lazy images are loaded by scrolling each into view first.
    """
    page.goto(url)
    page.wait_for_function(f"document.images.length >= {at_least}", timeout=timeout_ms)
    for handle in page.query_selector_all("img"):
        handle.scroll_into_view_if_needed()
    page.wait_for_function("[...document.images].every((i) => i.complete)", timeout=timeout_ms)
    found = page.evaluate("[...document.images].map((i) => [i.alt, i.currentSrc || i.src, i.naturalWidth])")
    return [ShownImage(alt, src, int(width)) for alt, src, width in found]
