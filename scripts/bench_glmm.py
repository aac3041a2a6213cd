#!/usr/bin/env python3
"""Benchmark: GLMM fits against glmmTMB (and lme4 where it applies) on the same data, one run.

* Poisson GLMM, log link, offset log(exposure), random intercept: n = 100,000, 5,000 groups;
* the same counts fitted as negative binomial (NB2);
* known-covariance binomial GLMM, N = 3,000 (``--known-n``; 0 skips it): y ~ x + (1 | id) with
  id's covariance a known K (0.5 B B^T / 300 + 0.5 I, full rank).  glmmTMB 1.1.5 (Debian) has no
  known-covariance structure (``propto`` came later), so the peer at N = 3,000 is lme4 through its
  modular interface with Z L for Z (K = L L^T; the pedigreemm / lme4qtl construction), and
  glmmTMB runs the same model at a smaller N (below).

Each tool runs in its own process (wall time of the fit and peak RSS of that process, imports
excluded from the time but included in the RSS); estimates are compared.  Ours is timed twice:
the first fit in a process (which also loads the compiled numba kernels from their cache) and
a second, warm one; R's fits are timed once.  Loading the library is timed on its own on both
sides: R's ``library(glmmTMB)`` (or lme4), and ours the package with its formula front end, the
modules a fit imports lazily (numba, scipy.optimize, formulaic, threadpoolctl) plus numba's
runtime, which the first jitted call in any process sets up (its typing and target registries,
about 0.25 s).  The ratios are of the fits, and of library plus first fit.

glmmTMB 1.1.5 fits the known-covariance model only through a construction: u = L v with
v ~ N(0, sigma^2 I) as a ``diag()`` term over L's n columns on a single group, its n variances
mapped to one parameter (``map``).  Its Laplace Hessian is then dense and built by automatic
differentiation, which limits it to a few hundred samples: it runs at ``--known-tmb-n`` (400),
with ours on the same data.

The lme4 known-covariance fit takes hours at N = 3,000 (n^3 per PIRLS step through a dense
Z L): ``--reuse-known-peer`` reads its result from WORKDIR/lme4_known_N.json, written by an
earlier run of this script on the same data, instead of fitting it again.

    python scripts/bench_glmm.py                 # n=100,000, 5,000 groups
    python scripts/bench_glmm.py --n 20000 --groups 1000
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _benchutil import write_json  # noqa: E402

OURS = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
family, path = sys.argv[1], sys.argv[2]
d = pd.read_csv(path)
t0 = time.perf_counter()
# loading the library, as R's times exclude library(glmmTMB): the package and its formula front end
# (its names load on first use), the modules a fit imports lazily, and numba's runtime (its typing
# and target registries, set up by the first jitted call in a process)
import gwas_glmm as gg
gg.glmm
import formulaic, numba, scipy.optimize, threadpoolctl  # noqa: E401,F401
numba.njit(lambda: 0)()
library_seconds = time.perf_counter() - t0
t0 = time.perf_counter()
fit = gg.glmm("y ~ x + offset(log(exposure)) + (1 | g)", d, family=family)
seconds = time.perf_counter() - t0  # first fit in the process: includes loading our compiled kernels
t0 = time.perf_counter()
gg.glmm("y ~ x + offset(log(exposure)) + (1 | g)", d, family=family)
warm = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "warm_seconds": warm, "library_seconds": library_seconds,
                  "beta": fit.beta.tolist(), "se": fit.se.tolist(),
                  "sd": float(fit.components[0].sd[0]), "loglik": fit.loglik,
                  "dispersion": fit.dispersion, "evaluations": fit.n_evaluations,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

R_CODE = r"""
args <- commandArgs(TRUE); family <- args[1]; tool <- args[2]
d <- read.csv(args[3]); d$g <- factor(d$g)
t0 <- proc.time()[["elapsed"]]
suppressMessages(library(tool, character.only = TRUE))
lib_secs <- proc.time()[["elapsed"]] - t0
t0 <- proc.time()[["elapsed"]]
if (tool == "glmmTMB") {
  fam <- if (family == "negbin") nbinom2 else poisson
  f <- glmmTMB(y ~ x + offset(log(exposure)) + (1 | g), data = d, family = fam)
  sd <- attr(VarCorr(f)$cond$g, "stddev"); fe <- summary(f)$coefficients$cond
  disp <- if (family == "negbin") sigma(f) else NA
} else {
  f <- glmer(y ~ x + offset(log(exposure)) + (1 | g), data = d, family = poisson)
  sd <- attr(VarCorr(f)$g, "stddev"); fe <- summary(f)$coefficients; disp <- NA
}
secs <- proc.time()[["elapsed"]] - t0
hwm <- grep("VmHWM", readLines("/proc/self/status"), value = TRUE)[1]
rss_mb <- as.numeric(gsub("[^0-9]", "", hwm)) / 1024
cat(sprintf(paste0('{"seconds": %.4f, "library_seconds": %.4f, "beta": [%s], "se": [%s], "sd": %.10g, ',
                   '"loglik": %.10g, "dispersion": %s, "peak_rss_mb": %.1f}\n'),
  secs, lib_secs, paste(sprintf("%.10g", fe[, 1]), collapse = ","), paste(sprintf("%.10g", fe[, 2]), collapse = ","),
  sd, as.numeric(logLik(f)), ifelse(is.na(disp), "null", sprintf("%.10g", disp)), rss_mb))
"""


OURS_KNOWN = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
import gwas_glmm as gg
gg.glmm, gg.Kinship  # the package's names load on first use: before the clock, as R's library()
d = pd.read_csv(sys.argv[1]); b = np.loadtxt(sys.argv[2], delimiter=",")
t0 = time.perf_counter()
k = 0.5 * b @ b.T / b.shape[1] + 0.5 * np.eye(len(d))
kin = gg.Kinship.from_array(k, iid=d.id.astype(str).tolist())
fit = gg.glmm("y ~ x + (1 | id)", d.assign(id=d.id.astype(str)), family="binomial", covariance={"id": kin})
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "beta": fit.beta.tolist(), "se": fit.se.tolist(),
                  "sd": float(fit.components[0].sd[0]), "loglik": fit.loglik, "evaluations": fit.n_evaluations,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

R_KNOWN = r"""
suppressMessages({library(lme4); library(Matrix)})
args <- commandArgs(TRUE)
d <- read.csv(args[1]); b <- as.matrix(read.csv(args[2], header = FALSE))
d$id <- factor(d$id, levels = d$id)
t0 <- proc.time()[["elapsed"]]
K <- 0.5 * tcrossprod(b) / ncol(b) + diag(0.5, nrow(d))
L <- t(chol(K))
ctrl <- glmerControl(check.nobs.vs.nlev = "ignore", check.nobs.vs.nRE = "ignore")
lf <- glFormula(y ~ x + (1 | id), data = d, family = binomial, control = ctrl)
lf$reTrms$Zt <- as(t(L) %*% lf$reTrms$Zt, "CsparseMatrix")
devfun <- do.call(mkGlmerDevfun, lf)
opt <- optimizeGlmer(devfun)
devfun <- updateGlmerDevfun(devfun, lf$reTrms)
opt <- optimizeGlmer(devfun, stage = 2)
f <- mkMerMod(environment(devfun), opt, lf$reTrms, fr = lf$fr)
secs <- proc.time()[["elapsed"]] - t0
fe <- summary(f)$coefficients; sd <- attr(VarCorr(f)$id, "stddev")
hwm <- grep("VmHWM", readLines("/proc/self/status"), value = TRUE)[1]
rss_mb <- as.numeric(gsub("[^0-9]", "", hwm)) / 1024
cat(sprintf('{"seconds": %.4f, "beta": [%s], "se": [%s], "sd": %.10g, "loglik": %.10g, "peak_rss_mb": %.1f}\n',
  secs, paste(sprintf("%.10g", fe[, 1]), collapse = ","), paste(sprintf("%.10g", fe[, 2]), collapse = ","),
  sd, as.numeric(logLik(f)), rss_mb))
"""


R_KNOWN_TMB = r"""
suppressMessages(library(glmmTMB))
args <- commandArgs(TRUE)
d <- read.csv(args[1]); b <- as.matrix(read.csv(args[2], header = FALSE))
n <- nrow(d)
t0 <- proc.time()[["elapsed"]]
K <- 0.5 * tcrossprod(b) / ncol(b) + diag(0.5, n)
L <- t(chol(K))
d$L <- L; d$dummy <- factor(1)  # L as one matrix column (a formula naming n columns overflows R's stack)
# u = L v, v ~ N(0, sigma^2 I): a diag() term over L's columns on one group, its n variances mapped to one
fit <- glmmTMB(y ~ x + diag(0 + L | dummy), data = d, family = binomial, map = list(theta = factor(rep(1, n))),
               start = list(theta = rep(0, n)))
secs <- proc.time()[["elapsed"]] - t0
fe <- summary(fit)$coefficients$cond; sd <- sqrt(VarCorr(fit)$cond$dummy[1, 1])
hwm <- grep("VmHWM", readLines("/proc/self/status"), value = TRUE)[1]
rss_mb <- as.numeric(gsub("[^0-9]", "", hwm)) / 1024
cat(sprintf('{"seconds": %.4f, "beta": [%s], "se": [%s], "sd": %.10g, "loglik": %.10g, "peak_rss_mb": %.1f}\n',
  secs, paste(sprintf("%.10g", fe[, 1]), collapse = ","), paste(sprintf("%.10g", fe[, 2]), collapse = ","),
  sd, as.numeric(logLik(fit)), rss_mb))
"""


def simulate_known(n: int, rank: int = 300, seed: int = 2) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    b = rng.normal(size=(n, rank))
    k = 0.5 * b @ b.T / rank + 0.5 * np.eye(n)
    u = np.linalg.cholesky(k) @ rng.normal(size=n) * 0.7
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 0.4 * x + u)))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "id": [f"s{i}" for i in range(n)]}), b


def simulate(n: int, groups: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n)
    exposure = rng.uniform(0.5, 3.0, n)
    b = rng.normal(0, 0.5, groups)
    mu = exposure * np.exp(-0.5 + 0.3 * x + b[g])
    y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))  # overdispersed: the NB model is true
    return pd.DataFrame({"y": y, "x": x, "exposure": exposure, "g": g})


def _known_files(work: Path, n: int) -> tuple[Path, Path]:
    """The known-covariance data set of size n (fixed seed) as CSV files: (data, B)."""
    data, b = simulate_known(n)
    dpath, bpath = work / f"known_{n}.csv", work / f"known_{n}_B.csv"
    data.to_csv(dpath, index=False)
    np.savetxt(bpath, b, delimiter=",", fmt="%.10g")
    return dpath, bpath


def run(cmd: list[str], timeout: float | None = None) -> dict:
    """The JSON record a fit printed; {"did_not_finish_seconds": T} when it ran past ``timeout``."""
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"did_not_finish_seconds": timeout}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=5_000)
    ap.add_argument("--known-n", type=int, default=3000, help="samples of the known-covariance fit (0: skip)")
    ap.add_argument("--workdir", default="bench_out/glmm")
    ap.add_argument("--known-tmb-n", type=int, default=400,
                    help="samples of a second known-covariance fit that glmmTMB can also run (0: skip)")
    ap.add_argument("--known-peer-timeout", type=float, default=0,
                    help="stop the lme4 known-covariance fit after this many seconds and report that (0: wait)")
    ap.add_argument("--reuse-known-peer", action="store_true",
                    help="read the lme4 known-covariance result of an earlier run (WORKDIR/lme4_known_N.json)")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"counts_{args.n}_{args.groups}.csv"
    simulate(args.n, args.groups).to_csv(path, index=False)
    rscript = shutil.which("Rscript")
    r_file = work / "fit.R"
    r_file.write_text(R_CODE)
    results = {}
    for family in ("poisson", "negbin"):
        results[f"ours_{family}"] = run([sys.executable, "-c", OURS, family, str(path)])
        if rscript:
            results[f"glmmTMB_{family}"] = run([rscript, str(r_file), family, "glmmTMB", str(path)])
            if family == "poisson":
                results["lme4_poisson"] = run([rscript, str(r_file), family, "lme4", str(path)])
    if args.known_n:
        dpath, bpath = _known_files(work, args.known_n)
        results["ours_known_binomial"] = run([sys.executable, "-c", OURS_KNOWN, str(dpath), str(bpath)])
        stored = work / f"lme4_known_{args.known_n}.json"
        if args.reuse_known_peer and stored.exists():
            results["lme4_known_binomial"] = json.loads(stored.read_text())
            print(f"lme4 known-covariance result read from {stored} (an earlier run on the same data)")
        elif rscript:
            known_r = work / "fit_known.R"
            known_r.write_text(R_KNOWN)
            results["lme4_known_binomial"] = run([rscript, str(known_r), str(dpath), str(bpath)],
                                                 timeout=args.known_peer_timeout or None)
            write_json(stored, results["lme4_known_binomial"])
    if args.known_tmb_n and rscript:
        dpath, bpath = _known_files(work, args.known_tmb_n)
        results["ours_known_small"] = run([sys.executable, "-c", OURS_KNOWN, str(dpath), str(bpath)])
        tmb_r = work / "fit_known_tmb.R"
        tmb_r.write_text(R_KNOWN_TMB)
        results["glmmTMB_known_small"] = run([rscript, str(tmb_r), str(dpath), str(bpath)])
    print(f"\nn = {args.n}, groups = {args.groups}; known covariance N = {args.known_n}\n")
    print(f"{'fit':<18}{'seconds':>9}{'peak RSS MiB':>14}{'beta_x':>11}{'sd(g)':>9}{'logLik':>14}")
    for key, r in results.items():
        if "did_not_finish_seconds" in r:
            print(f"{key:<18} did not finish in {r['did_not_finish_seconds']:.0f} s")
            continue
        print(f"{key:<18}{r['seconds']:>9.2f}{r['peak_rss_mb']:>14.0f}{r['beta'][1]:>11.5f}{r['sd']:>9.5f}{r['loglik']:>14.3f}")
    ratios = {}
    for family in ("poisson", "negbin"):
        if f"glmmTMB_{family}" in results:
            ours, tmb = results[f"ours_{family}"], results[f"glmmTMB_{family}"]
            ratios[f"glmmTMB_over_ours_{family}"] = tmb["seconds"] / ours["seconds"]
            ratios[f"glmmTMB_over_ours_warm_{family}"] = tmb["seconds"] / ours["warm_seconds"]
            ratios[f"glmmTMB_over_ours_with_library_{family}"] = ((tmb["seconds"] + tmb["library_seconds"])
                                                                  / (ours["seconds"] + ours["library_seconds"]))
            ratios[f"max_rel_beta_diff_{family}"] = float(np.max(np.abs(np.subtract(ours["beta"], tmb["beta"])
                                                                        / np.abs(tmb["beta"]))))
            ratios[f"loglik_diff_{family}"] = ours["loglik"] - tmb["loglik"]
    if "lme4_poisson" in results:
        ratios["lme4_over_ours_poisson"] = results["lme4_poisson"]["seconds"] / results["ours_poisson"]["seconds"]
    for peer, ours_key, label in (("lme4_known_binomial", "ours_known_binomial", "known"),
                                  ("glmmTMB_known_small", "ours_known_small", "known_small")):
        if peer in results and "did_not_finish_seconds" in results[peer]:
            ratios[f"{peer.split('_')[0]}_over_ours_{label}_at_least"] = (results[peer]["did_not_finish_seconds"]
                                                                       / results[ours_key]["seconds"])
        elif peer in results:
            ours, other = results[ours_key], results[peer]
            ratios[f"{peer.split('_')[0]}_over_ours_{label}"] = other["seconds"] / ours["seconds"]
            ratios[f"max_rel_beta_diff_{label}"] = float(np.max(np.abs(np.subtract(ours["beta"], other["beta"])
                                                                       / np.abs(other["beta"]))))
            ratios[f"rel_sd_diff_{label}"] = abs(ours["sd"] - other["sd"]) / other["sd"]
            ratios[f"loglik_diff_{label}"] = ours["loglik"] - other["loglik"]
    print()
    for k, v in ratios.items():
        print(f"{k:<32}{v:10.4g}")
    write_json(work / "bench_glmm.json", {"args": vars(args), "results": results, "ratios": ratios})


if __name__ == "__main__":
    main()
