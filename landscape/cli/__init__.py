"""Command-line entry points: argument parsing, then one call into the command layer (:mod:`landscape.jobs`).

Ctrl-C while a command is still starting (importing torch takes seconds) ends it at once with
"interrupted" and exit code 130, not a traceback; once a command runs, :func:`run_cli` turns it
into the same line after the library has saved what it must. Under ``mpirun`` a Ctrl-C while
starting is only noted, and ends the whole job once this rank has joined it
(:func:`landscape.runtime.parallel.join`): a rank that left before joining could leave another
waiting in ``MPI_Init`` for ever.
"""

import os
import signal
import sys

from landscape.runtime.parallel import interrupt_later, under_mpi  # no numpy, no torch: the handler is up at once


def _interrupted_while_starting(signum, frame):  # pragma: no cover - exercised by a subprocess test
    if under_mpi():
        interrupt_later(signum, frame)
        return
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "landscape"
    os.write(2, f"{prog}: interrupted\n".encode())
    os._exit(130)


_script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
if _script.startswith("landscape-") and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_while_starting)
