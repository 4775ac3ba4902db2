"""Command-line entry points: argument parsing, then one call into the command layer (:mod:`landscape.jobs`).

Ctrl-C while a command is still starting (importing torch takes seconds) ends it at once with
"interrupted" and exit code 130, not a traceback; once a command runs, :func:`run_cli` turns it
into the same line after the library has saved what it must. Under ``mpirun`` a Ctrl-C while
starting is only noted, and ends the whole job once this rank has joined it
(:func:`landscape.runtime.parallel.join`): a rank that left before joining could leave another
waiting in ``MPI_Init`` for ever. (Before this module has run, and loaded the parallel module,
a Ctrl-C is Python's: the first hundredths of a second of a process.)
"""

import os
import signal
import sys


def _interrupted_while_starting(signum, frame):  # pragma: no cover - exercised by a subprocess test
    # landscape.runtime.parallel once it is imported (moments later): nothing is imported here, so
    # that the handler is up at once
    parallel = sys.modules.get("landscape.runtime.parallel")
    if hasattr(parallel, "interrupt_later") and parallel.under_mpi():
        parallel.interrupt_later(signum, frame)
        return
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "landscape"
    os.write(2, f"{prog}: interrupted\n".encode())
    os._exit(130)


_script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
if _script.startswith("landscape-") and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import landscape.runtime.parallel  # noqa: E402,F401 - loaded now, once the handler is up: what it needs under mpirun
