"""Launch a controller app on os-ken, listening on loopback only.

  python -m controllers.run detpath|baseline MODEL.json [--port 6653]

os-ken has no ``osken-manager`` any more; this is its replacement for one app plus the
OpenFlow handler.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from controllers.description import MODEL_ENV

APPS = ("detpath", "baseline")  # the one list of controller apps: the twin and campaigns import it
CONTROLLERS = ("none", *APPS)  # what --controller and campaigns accept; "none": static flows, no process


def serve(app: str, model: str, ip: str = "127.0.0.1", port: int = 6653) -> None:
    """Run the os-ken app module ``app`` (and the OpenFlow handler) on ``ip:port`` for the
    description ``model``, logging at INFO to stderr, until stopped."""
    os.environ[MODEL_ENV] = model
    # the run's controller.log (the twin sends stdout/stderr there): what was installed, when
    # each switch was ready, the wiring check; without this only warnings would be kept
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from os_ken.lib import hub
    hub.patch(thread=False)
    from os_ken import cfg
    from os_ken.base.app_manager import AppManager
    cfg.CONF(args=["--ofp-listen-host", ip, "--ofp-tcp-listen-port", str(port)], project="os_ken")
    AppManager.run_apps([app, "os_ken.controller.ofp_handler"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="controllers.run")
    ap.add_argument("app", choices=APPS)
    ap.add_argument("model", help="fabric model JSON written by the twin")
    ap.add_argument("--port", type=int, default=6653)
    args = ap.parse_args(argv)
    serve(f"controllers.{args.app}", args.model, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
