"""Run the twin's learning switch for a Containernet network on its own:

  python -m twin.containernet.serve MODEL.json [--ip 127.0.0.1] [--port 6653]

MODEL.json: the network's description (twin.containernet.controller.description). What
:class:`twin.containernet.controller.LearningController` starts; also a controller to point a
``RemoteController`` at.
"""

from __future__ import annotations

import argparse
import sys

from controllers.run import serve

APP = "twin.containernet.learning"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="twin.containernet.serve")
    ap.add_argument("model", help="the network's description, JSON")
    ap.add_argument("--ip", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6653)
    args = ap.parse_args(argv)
    serve(APP, args.model, ip=args.ip, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
