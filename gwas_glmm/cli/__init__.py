"""Command-line interface: ``gwas-glmm COMMAND ...`` (also ``python -m gwas_glmm``)."""

from __future__ import annotations

import sys
from pathlib import Path

from .._progress import close_logging, setup_logging
from ..exceptions import GwasGlmmError
from .parser import get_parser

__all__ = ["get_parser", "main"]


def _log_path(args) -> Path | None:
    if args.runner == "demo":
        return Path(args.out) / "demo.log"
    if args.runner == "report":
        return Path(f"{args.out}.report.log")
    out = args.grm if args.runner == "eigen" else args.out
    for suffix in (".tsv.gz", ".null.h5", ".grm.h5", ".h5", ".hdf5", ".grm.bin", ".grm.gz", ".rel.bin", ".rel.gz", ".rel"):
        if out.endswith(suffix):
            return Path(out[: -len(suffix)] + ".log")
    return Path(f"{out}.log")


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; returns the exit code (0 success, 1 input error, 2 usage error)."""
    parser = get_parser()
    args = parser.parse_args(argv)
    if getattr(args, "runner", None) is None:
        parser.print_help(sys.stderr)
        return 2
    from .runners import RUNNERS, set_threads

    log = setup_logging(_log_path(args), verbose=args.verbose)
    log.info("gwas-glmm %s", " ".join(sys.argv[1:] if argv is None else argv))
    try:
        set_threads(args.threads)
        RUNNERS[args.runner](args)
    except GwasGlmmError as exc:
        message = " ".join(str(exc).split())
        log.error("gwas-glmm %s: error: %s", args.command, message)
        return 1
    except KeyboardInterrupt:
        log.error("gwas-glmm %s: interrupted", args.command)
        return 130
    finally:
        close_logging()
    return 0
