"""Python agent program for Kiln's agent compatibility test.

Profiles itself with the pyroscope-io SDK (pyroscope-rs underneath) and burns
CPU in kiln_hot_python_loop until it has run for the given number of seconds
or is killed.

Usage: app.py SERVER_URL APPLICATION_NAME SECONDS
"""

import os
import sys
import time

import pyroscope


def kiln_hot_python_loop(deadline):
    """Burns CPU until deadline; this is the frame the test looks for."""
    acc = 0
    while time.monotonic() < deadline:
        for i in range(20000):
            acc = (acc * 31 + i) % 1000003
    return acc


def main():
    if len(sys.argv) != 4:
        sys.stderr.write("usage: app.py SERVER_URL APPLICATION_NAME SECONDS\n")
        return 2
    server, name, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    pyroscope.configure(
        application_name=name,
        server_address=server,
        sample_rate=100,
        upload_interval=int(os.environ.get("KILN_AGENT_UPLOAD_INTERVAL", "2")),
        enable_logging=os.environ.get("KILN_AGENT_DEBUG", "") != "",
        tags={"kiln_agent": "python"},
    )
    print("python agent: profiling started, application_name=%s" % name, flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        kiln_hot_python_loop(min(end, time.monotonic() + 1.0))
    print("python agent: done, shutting down", flush=True)
    pyroscope.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
