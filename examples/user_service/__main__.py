"""``python -m examples.user_service [--config FILE] [--host H] [--port P]``: serve on uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import uvicorn

import odm

from .app import DEFAULT_CONFIG, create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.user_service", description=__doc__)
    parser.add_argument("--config", default=os.environ.get("USER_SERVICE_CONFIG", str(DEFAULT_CONFIG)),
                        help="seed-format JSON config (default: USER_SERVICE_CONFIG, else %(default)s)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    try:
        app = create_app(args.config)
    except odm.ODMError as exc:  # a wrong config: one line, no traceback
        print(f"user_service: {exc}", file=sys.stderr)
        return 1
    # The service's own records (a 5xx's detail under its request id) go to stderr beside uvicorn's.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
