"""Command-line interface: ``gwas-glmm COMMAND ...`` (also ``python -m gwas_glmm``)."""

from __future__ import annotations

import platform
import shlex
import signal
import sys
import threading

from .. import __version__
from .._progress import add_log_file, close_logging, setup_logging
from ..exceptions import GwasGlmmError, InputError
from .parser import get_parser

__all__ = ["get_parser", "main", "run"]


def run() -> None:
    """The ``gwas-glmm`` console script: :func:`main` as a process.  After a first Ctrl-C has been
    reported (and the scan's checkpoints kept), a second one ends the process at once and quietly,
    instead of a traceback from the threads still finishing their blocks: every file is written
    under a temporary name, so nothing half-written is left."""
    global _CONSOLE
    _CONSOLE = True
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the exit code (0 success, 1 input error, 2 usage error, 130
    interrupted)."""
    parser = get_parser()
    args = parser.parse_args(argv)
    if getattr(args, "runner", None) is None:
        parser.print_help(sys.stderr)
        return 2
    from .._threads import configure
    from .common import check_outputs, check_values, log_path
    from .runners import RUNNERS

    log = setup_logging(verbose=args.verbose)
    command = shlex.join(["gwas-glmm", *(sys.argv[1:] if argv is None else argv)])
    try:
        check_outputs(args)  # before the log is opened: it may be the input an output would overwrite
        try:
            add_log_file(log_path(args))
        except OSError as exc:
            raise InputError(f"cannot write the log {log_path(args)} ({exc.strerror}); choose a writable --out") from None
        log.info("gwas-glmm %s (Python %s): %s", __version__, platform.python_version(), command)
        check_values(args)
        log.info("threads: %s", configure(args.threads).describe())
        RUNNERS[args.runner](args)
    except GwasGlmmError as exc:
        message = " ".join(str(exc).split())
        log.error("gwas-glmm %s: error: %s", args.command, message)
        return 1
    except OSError as exc:  # a read-only or full folder, a file removed under us: one line, not a traceback
        log.debug("gwas-glmm %s: error", args.command, exc_info=True)
        where = f"{exc.filename}: " if exc.filename else ""
        log.error("gwas-glmm %s: error: %s%s (check that the output folder is writable and has free space)",
                  args.command, where, exc.strerror or exc)
        return 1
    except KeyboardInterrupt:
        if _is_main_process():
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C while threads finish: end now
        log.error("gwas-glmm %s: interrupted%s", args.command, _RESUME.get(args.runner, ""))
        return 130
    finally:
        close_logging()
    return 0


def _is_main_process() -> bool:
    """Whether this is the console script (``run``) in its main thread, so that the process's
    signal handling is ours to change (never in a Python session calling :func:`main`)."""
    return _CONSOLE and threading.current_thread() is threading.main_thread()


_CONSOLE = False
_RESUME = {"scan": "; run the same command again to resume from the blocks already done"}
