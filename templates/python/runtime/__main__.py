"""Entry point: ``python3 -m runtime`` from the project directory, or
``python3 runtime/__main__.py`` from anywhere (what bin/runtime runs)."""

import os
import sys

if not __package__:
    # Run as a file: make the project directory, not runtime/, the first
    # import path, so that runtime's own modules cannot shadow a user
    # module of the same name (config, server, ...).
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        sys.path[0] = os.path.dirname(here)
    else:
        sys.path.insert(0, os.path.dirname(here))

try:
    from runtime.server import main
except ImportError as e:
    sys.stderr.write(
        "runtime: cannot import %s with %s (%s).\n"
        "runtime: install the dependencies: on Debian/Ubuntu `apt-get install python3-grpcio python3-protobuf python3-yaml`,\n"
        "runtime: elsewhere `%s -m pip install -r requirements.txt`; or set PYTHON to a python3 that has them.\n"
        % (getattr(e, "name", None) or "a dependency", sys.executable, e, sys.executable)
    )
    sys.exit(2)

sys.exit(main())
