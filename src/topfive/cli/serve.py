"""`topfive serve`: a web page to compare models' top-k on a photo, and its HTTP API."""

from __future__ import annotations

import importlib
import ipaddress
import sys
from pathlib import Path

from topfive.cli.common import DEFAULT_MODEL, add_speed_options, fail, models_arg

WEB_MODULES = ("starlette", "uvicorn")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="a web page to compare models' top-5 on a photo",
        description="Serve a page (and its JSON API) where a dropped photo is classified by each chosen "
        "model, their top-k side by side. The models are loaded once; requests that arrive together "
        "share one forward pass. Needs the web extra: pip install 'topfive[web]'.",
    )
    p.add_argument(
        "--models", "--model", "-m", dest="models", type=models_arg, default=DEFAULT_MODEL,
        help="comma-separated model names or model-card paths (default: %(default)s)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="most requests in one forward pass (default: 16)")
    p.add_argument("--batch-window-ms", type=float, default=5.0,
                   help="how long a quiet model waits for more requests before it runs a batch (default: 5)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload taken, in MB (default: 20)")
    p.add_argument("--queue", type=int, default=16,
                   help="requests classified at once, and twice as many uploads received at once; more are "
                   "answered 503 (default: 16)")
    p.add_argument("--upload-timeout", type=float, default=60.0, metavar="S",
                   help="most seconds an upload may take to arrive; 408 beyond (default: 60)")
    p.add_argument("--report", default="report", metavar="DIR",
                   help="the study report folder the page shows (default: %(default)s)")
    add_speed_options(p)
    p.set_defaults(run=run)


def missing_web_module() -> str | None:
    """The first module of the web extra that cannot be imported, None when all can."""
    for module in WEB_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            return module
    for module in ("python_multipart", "multipart"):  # the name changed in python-multipart 0.0.13
        try:
            importlib.import_module(module)
            return None
        except ImportError:
            continue
    return "python-multipart"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def one_line(error: Exception) -> str:
    """The error as one line (runtimes' messages can span many), its type when it says nothing."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    text = lines[0] if len(lines) == 1 else lines[0] + " ..."
    return text if len(text) <= 300 else text[:300] + " ..."


def run(args) -> int:
    missing = missing_web_module()
    if missing:
        return fail(f"topfive serve needs the web extra ({missing} is not installed): pip install 'topfive[web]'")
    if args.decode != "pillow":
        return fail("serve decodes each photo once, with Pillow, for all its models: --decode does not apply")
    positive = min(args.max_upload_mb, args.upload_timeout) > 0
    if min(args.batch_size, args.queue) < 1 or args.batch_window_ms < 0 or not positive:
        return fail("--batch-size and --queue must be at least 1, --batch-window-ms at least 0, "
                    "--max-upload-mb and --upload-timeout above 0")
    import uvicorn

    from topfive.predict import Classifier
    from topfive.serve.app import create_app
    from topfive.serve.batching import warm_up
    from topfive.serve.settings import MB, ServeSettings

    classifiers = []
    for name in dict.fromkeys(args.models):
        try:
            classifiers.append(Classifier(
                name, device=args.device, batch_size=args.batch_size, runtime=args.runtime,
                calibration=args.calibration, threads=args.threads,
            ))
        except Exception as e:  # unknown model, weights not available, missing runtime
            return fail(f"{name}: {one_line(e)}")
    for c in classifiers:  # here, not in the app's start-up, where uvicorn would print a traceback
        try:
            warm_up(c)
        except Exception as e:
            return fail(f"{c.name}: its first pass (on a blank image) failed: {type(e).__name__}: {one_line(e)}")
    settings = ServeSettings(max_upload_bytes=int(args.max_upload_mb * MB), max_pending=args.queue,
                             max_uploads=2 * args.queue, upload_timeout_s=args.upload_timeout,
                             batch_window_s=args.batch_window_ms / 1000, report_dir=Path(args.report),
                             draft_size=max(c.draft_size() for c in classifiers) if args.draft else None)
    try:
        app = create_app(classifiers, settings)
    except ValueError as e:
        return fail(str(e))
    if not is_loopback(args.host):
        print(f"topfive: listening on {args.host}: other machines can reach this server", file=sys.stderr)
    for c in classifiers:
        print(f"topfive: serving {c.name} on {getattr(c.runtime, 'name', 'a custom runtime')}", file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"topfive: the page is at http://{shown}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
