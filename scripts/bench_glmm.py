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

lme4's and glmmTMB's own examples (``--models``; ``--models only`` runs just these): grouseticks
(Poisson, three crossed/nested intercepts, q = 584), Owls (Poisson, offset, an observation-level
effect beside the nest's, q = 626), sleepstudy (REML, correlated slopes; and uncorrelated,
``(Days || Subject)``, glmmTMB's ``diag()``), cbpp by AGQ(25) and a
simulated AGQ(25) binary model (1,000 groups of 10).  Each tool fits each model in its own
process: the first fit after loading the library, then ``--repeats`` warm fits (the median is
reported).  Ours loads its compiled kernels from numba's cache in the first fit, so run the script
once before timing (the first run fills the cache).  The target: our first fit no slower than the
faster R tool's median warm fit.

    python scripts/bench_glmm.py                 # n=100,000, 5,000 groups
    python scripts/bench_glmm.py --n 20000 --groups 1000
    python scripts/bench_glmm.py --models only   # the lme4 / glmmTMB examples alone
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


MODELS = {  # name: (dataset, our formula, family, keyword arguments, R tools)
    "grouseticks": ("grouseticks", "TICKS ~ C(YEAR) + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)", "poisson",
                    {}, ("lme4", "glmmTMB")),
    "owls_olre": ("owls", "SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest)"
                  " + (1 | obs)", "poisson", {}, ("lme4", "glmmTMB")),
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", "gaussian", {}, ("lme4", "glmmTMB")),
    "sleepstudy_diag": ("sleepstudy", "Reaction ~ Days + (Days || Subject)", "gaussian", {}, ("lme4", "glmmTMB")),
    "cbpp_agq25": ("cbpp", "cbind(incidence, size - incidence) ~ C(period) + (1 | herd)", "binomial", {"nAGQ": 25},
                   ("lme4",)),
    "binary_agq25": ("agq_sim", "y ~ x + (1 | g)", "binomial", {"nAGQ": 25}, ("lme4",)),
}

OURS_MODEL = r"""
import json, resource, statistics, sys, time
import pandas as pd
name, path, formula, family, kwargs, repeats = sys.argv[1:7]
d = pd.read_csv(path)
t0 = time.perf_counter()
import gwas_glmm as gg
gg.glmm
import formulaic, numba, scipy.optimize, threadpoolctl  # noqa: E401,F401
numba.njit(lambda: 0)()
library_seconds = time.perf_counter() - t0
kwargs = json.loads(kwargs)
t0 = time.perf_counter()
fit = gg.glmm(formula, d, family=family, **kwargs)
first = time.perf_counter() - t0
warm = []
for _ in range(int(repeats)):
    t0 = time.perf_counter()
    gg.glmm(formula, d, family=family, **kwargs)
    warm.append(time.perf_counter() - t0)
print(json.dumps({"seconds": first, "warm_seconds": statistics.median(warm), "library_seconds": library_seconds,
                  "beta": fit.beta.tolist(), "loglik": fit.loglik, "evaluations": fit.n_evaluations,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

R_MODEL = r"""
args <- commandArgs(TRUE); model <- args[1]; tool <- args[2]; d <- read.csv(args[3]); reps <- as.integer(args[4])
t0 <- proc.time()[["elapsed"]]
suppressMessages(library(tool, character.only = TRUE))
lib_secs <- proc.time()[["elapsed"]] - t0
tmb <- tool == "glmmTMB"
if (model == "grouseticks") {
  d$YEAR <- factor(d$YEAR); d$cHEIGHT <- d$HEIGHT - mean(d$HEIGHT)
  for (v in c("BROOD", "INDEX", "LOCATION")) d[[v]] <- factor(d[[v]])
  fit_once <- function() {
    f <- TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)
    if (tmb) glmmTMB(f, d, family = poisson) else glmer(f, d, family = poisson)
  }
} else if (model == "owls_olre") {
  d$obs <- factor(seq_len(nrow(d))); d$Nest <- factor(d$Nest)
  fit_once <- function() {
    f <- SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest) + (1 | obs)
    if (tmb) glmmTMB(f, d, family = poisson) else glmer(f, d, family = poisson)
  }
} else if (model == "sleepstudy") {
  d$Subject <- factor(d$Subject)
  fit_once <- function() {
    f <- Reaction ~ Days + (Days | Subject)
    if (tmb) glmmTMB(f, d, REML = TRUE) else lmer(f, d)
  }
} else if (model == "sleepstudy_diag") {
  d$Subject <- factor(d$Subject)
  fit_once <- function() {
    if (tmb) glmmTMB(Reaction ~ Days + diag(Days | Subject), d, REML = TRUE) else lmer(Reaction ~ Days + (Days || Subject), d)
  }
} else if (model == "cbpp_agq25") {
  d$period <- factor(d$period); d$herd <- factor(d$herd)
  fit_once <- function() glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), d, family = binomial,
                               nAGQ = 25)
} else {
  d$g <- factor(d$g)
  fit_once <- function() glmer(y ~ x + (1 | g), d, family = binomial, nAGQ = 25)
}
t0 <- proc.time()[["elapsed"]]; f <- fit_once(); first <- proc.time()[["elapsed"]] - t0
warm <- sapply(seq_len(reps), function(i) { t0 <- proc.time()[["elapsed"]]; fit_once(); proc.time()[["elapsed"]] - t0 })
fe <- if (tmb) summary(f)$coefficients$cond[, 1] else fixef(f)
hwm <- grep("VmHWM", readLines("/proc/self/status"), value = TRUE)[1]
cat(sprintf(paste0('{"seconds": %.4f, "warm_seconds": %.4f, "library_seconds": %.4f, "beta": [%s], ',
                   '"loglik": %.10g, "peak_rss_mb": %.1f}\n'),
  first, median(warm), lib_secs, paste(sprintf("%.10g", fe), collapse = ","), as.numeric(logLik(f)),
  as.numeric(gsub("[^0-9]", "", hwm)) / 1024))
"""


def model_data(dataset: str, work: Path) -> Path:
    """The data of one example as a CSV both sides read (the shipped copy of lme4's/glmmTMB's
    dataset, with an observation index for Owls; or the simulated AGQ model, seed 3)."""
    path = work / f"{dataset}.csv"
    if dataset == "agq_sim":
        rng = np.random.default_rng(3)
        g = np.repeat(np.arange(1000), 10)
        x = rng.normal(size=g.size)
        eta = -0.5 + 0.5 * x + rng.normal(0, 1.2, 1000)[g]
        d = pd.DataFrame({"y": (rng.random(g.size) < 1 / (1 + np.exp(-eta))).astype(int), "x": x, "g": g})
    else:
        from gwas_glmm.datasets import load

        d = load(dataset)
        if dataset == "owls":
            d["obs"] = np.arange(len(d))
        if dataset == "grouseticks":
            d["cHEIGHT"] = d.HEIGHT - d.HEIGHT.mean()
    d.to_csv(path, index=False)
    return path


def run_models(work: Path, rscript: str | None, repeats: int) -> tuple[dict, dict]:
    """Each example by each tool in its own process; ratios of the faster R tool's median warm
    fit to our first fit and to our median warm fit (above 1: ours faster)."""
    r_file = work / "fit_model.R"
    r_file.write_text(R_MODEL)
    results, ratios = {}, {}
    for name, (dataset, formula, family, kwargs, tools) in MODELS.items():
        path = model_data(dataset, work)
        ours = run([sys.executable, "-c", OURS_MODEL, name, str(path), formula, family, json.dumps(kwargs),
                    str(repeats)])
        results[f"ours_{name}"] = ours
        peers = {}
        if rscript:
            for tool in tools:
                peers[tool] = results[f"{tool}_{name}"] = run([rscript, str(r_file), name, tool, str(path),
                                                               str(repeats)])
        if peers:
            best = min(peers.values(), key=lambda r: r["warm_seconds"])
            ratios[f"{name}_peer_over_ours_first"] = best["warm_seconds"] / ours["seconds"]
            ratios[f"{name}_peer_over_ours_warm"] = best["warm_seconds"] / ours["warm_seconds"]
            ratios[f"{name}_max_rel_beta_diff"] = float(np.max(np.abs(np.subtract(ours["beta"], best["beta"]))
                                                               / np.maximum(np.abs(best["beta"]), 1e-3)))
            # lme4 reports an AGQ fit's binomial log-likelihood relative to the saturated model
            # (cbpp: off by that constant, 41.98); the estimates compare directly
            ratios[f"{name}_loglik_diff"] = ours["loglik"] - max(r["loglik"] for r in peers.values())
    print(f"\n{'model':<17}{'tool':<9}{'first s':>9}{'warm s':>9}{'library s':>10}{'evals':>7}{'logLik':>15}")
    for key, r in results.items():
        tool, name = key.split("_", 1)
        print(f"{name:<17}{tool:<9}{r['seconds']:>9.3f}{r['warm_seconds']:>9.3f}{r['library_seconds']:>10.2f}"
              f"{r.get('evaluations', ''):>7}{r['loglik']:>15.4f}")
    return results, ratios


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
    ap.add_argument("--models", choices=("yes", "no", "only"), default="yes",
                    help="also fit lme4's and glmmTMB's examples (only: just those)")
    ap.add_argument("--repeats", type=int, default=5, help="warm fits per example and tool (median reported)")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    if args.models != "no":
        model_results, model_ratios = run_models(work, shutil.which("Rscript"), args.repeats)
        print()
        for k, v in model_ratios.items():
            print(f"{k:<40}{v:10.4g}")
        write_json(work / "bench_glmm_models.json", {"args": vars(args), "results": model_results,
                                                     "ratios": model_ratios})
        if args.models == "only":
            return
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
