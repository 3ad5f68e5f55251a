"""Starts the local echo server on localhost:4040, runs an example script unchanged, stops
the server. Usage: python examples/run_with_server.py examples/short_lived_connection.py"""
import os
import socket
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:] or [os.path.join(here, "short_lived_connection.py")]
server = subprocess.Popen([sys.executable, os.path.join(here, "echo_server.py"), "--close-after", "3"])
try:
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("localhost", 4040), timeout=1).close()
            break
        except OSError:
            if time.time() > deadline:
                sys.exit("echo server did not start")
            time.sleep(0.05)
    sys.exit(subprocess.call([sys.executable] + args))
finally:
    server.terminate()
    server.wait()
