"""The serving side of the API: ``invoke`` a model, list the ``models``."""

from __future__ import annotations

import argparse
from typing import Any

from chalicelib.inference.api_contract import MAX_PAGE
from mmedeploy.cli import options
from mmedeploy.cli.context import Context, dumps, target_option
from mmedeploy.cli.errors import EXIT_INVALID, EXIT_OK

INVOKE_INTRO = """\
FILE is a KServe v2 JSON inference request ('-' reads standard input), e.g.
  {"inputs": [{"name": "RAW_FEATURES", "datatype": "FP32", "shape": [1, 16], "data": [0.1, ...]}]}
It goes to POST <api_url>/v2/models/NAME/infer (with --version: .../versions/V/infer, pinned)
with the invoke token (the admin token if the target has none). Without --version the API routes
the request: production, or the canary for its share of the traffic. Prints who served (version
and route: production, canary or pinned) and each output (name, datatype, shape, data; long
tensors are cut after a few values: --json prints everything).
"""

MODELS_INTRO = """\
Reads GET <api_url>/models with the invoke token. Without --limit every page is read (following
the API's 'next' token); with --limit N one page of at most N models, and the command to read the
next one. --json prints {"models": [{"name", "latest_version", "updated_at", "production_version",
"canary_version"}], "next": TOKEN|null}.
"""


def register(commands: Any) -> None:
    state_dir = options.state_dir()
    invoke = options.add_command(
        commands,
        "invoke",
        "send a KServe v2 inference request to a model through the API",
        INVOKE_INTRO,
        parents=(state_dir,),
    )
    invoke.add_argument("name", metavar="NAME")
    invoke.add_argument(
        "--data", required=True, metavar="FILE", help="the KServe v2 JSON inference request ('-': standard input)"
    )
    invoke.add_argument(
        "--version", metavar="V", help="pin the version that serves (default: the API routes: production or canary)"
    )
    invoke.add_argument(
        "--json",
        action="store_true",
        help="print the KServe answer with http_status, served_version and route added",
    )
    invoke.add_argument(
        "--timeout", type=options.positive_seconds, default=60.0, metavar="S", help="wait this long for the answer (60)"
    )
    invoke.set_defaults(handler=cmd_invoke)

    models = options.add_command(
        commands,
        "models",
        "list the models: production, canary and latest version of each",
        MODELS_INTRO,
        parents=(state_dir,),
    )
    models.add_argument(
        "--limit",
        type=options.page_size,
        metavar="N",
        help=f"one page of at most N models (1-{MAX_PAGE})",
    )
    models.add_argument("--next", metavar="TOKEN", help="start after the page that gave this token (with --limit)")
    models.add_argument("--json", action="store_true", help='print {"models": [...], "next": TOKEN|null}')
    models.set_defaults(handler=cmd_models)


def cmd_invoke(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.inference_client import BadRequestFile, infer, inference, inference_lines, read_request

    try:
        body = read_request(args.data)
    except BadRequestFile as exc:
        raise ctx.fail(str(exc)) from exc
    target = ctx.target(args.state_dir)
    answer = infer(target, args.name, args.version, body, timeout=args.timeout)
    served = inference(answer)
    if args.json:
        print(dumps(served.as_json()))
    if not answer.accepted:
        raise ctx.refused(answer, target, "invoke" if target.api_token else "admin")
    if "outputs" not in served.document:
        raise ctx.fail(
            f"the API answered HTTP {answer.http_status} without a KServe answer: {answer.error}", EXIT_INVALID
        )
    if not args.json:
        for line in inference_lines(args.name, served):
            ctx.print(line)
    return EXIT_OK


def cmd_models(args: argparse.Namespace, ctx: Context) -> int:
    from mmedeploy.inference_client import PagingLoop, list_models, models_lines

    if args.next is not None and args.limit is None:
        raise ctx.fail("--next continues a paged listing: give --limit N too")
    target = ctx.target(args.state_dir)
    try:
        listing = list_models(target, args.limit, args.next)
    except PagingLoop as exc:
        raise ctx.fail(str(exc), EXIT_INVALID) from exc
    if listing.failed is not None:
        if args.json:
            print(dumps(listing.failed.as_json()))
        raise ctx.refused(listing.failed, target, "invoke" if target.api_token else "admin")
    if args.json:
        print(dumps({"models": listing.models, "next": listing.next}))
        return EXIT_OK
    if not listing.models and args.next:
        ctx.print("no more models")
    elif not listing.models:
        ctx.print("no models yet: push one with: mmedeploy push NAME_VERSION.tar.gz")
    else:
        for line in models_lines(listing.models):
            ctx.print(line)
    if listing.next:
        ctx.print(f"more: mmedeploy models --limit {args.limit} --next {listing.next}{target_option(args)}")
    return EXIT_OK
