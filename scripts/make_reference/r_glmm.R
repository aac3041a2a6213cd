# Makes the R references checked by tests/test_glmm_reference.py.
#
# Needs R with lme4 and glmmTMB (Debian: apt-get install r-cran-lme4 r-cran-glmmtmb).
# Run from the repository root:  Rscript scripts/make_reference/r_glmm.R
# Writes each dataset as CSV (as shipped with lme4 / glmmTMB) under gwas_glmm/datasets/ (they ship
# with the package: gwas_glmm.datasets.load), and under tests/data/r/ each fit's estimates as a small tab-separated table: fixed effects with SEs, variance components
# (standard deviations and correlations, residual SD), logLik, and the R/package versions.
suppressMessages({library(lme4); library(glmmTMB)})
out <- "tests/data/r"
data_out <- "gwas_glmm/datasets"
dir.create(out, showWarnings = FALSE, recursive = TRUE)

write_fit <- function(name, fit, kind) {
  fe <- summary(fit)$coefficients
  if (is.list(fe) && !is.matrix(fe)) fe <- fe$cond
  rows <- data.frame(what = "fixed", name = rownames(fe), estimate = fe[, 1], se = fe[, 2])
  if (kind == "lme4") {
    vc <- as.data.frame(VarCorr(fit))
    nm <- ifelse(is.na(vc$var2), paste(vc$grp, vc$var1, sep = ":"), paste(vc$grp, vc$var1, vc$var2, sep = ":"))
    rows <- rbind(rows, data.frame(what = ifelse(is.na(vc$var2), "sd", "cor"), name = nm,
                                   estimate = ifelse(is.na(vc$var2), vc$sdcor, vc$sdcor), se = NA))
  } else {
    vc <- VarCorr(fit)$cond
    for (g in names(vc)) {
      s <- attr(vc[[g]], "stddev")
      rows <- rbind(rows, data.frame(what = "sd", name = paste(g, names(s), sep = ":"), estimate = s, se = NA))
    }
    if (family(fit)$family %in% c("nbinom2")) {
      rows <- rbind(rows, data.frame(what = "dispersion", name = "theta", estimate = sigma(fit), se = NA))
    }
  }
  rows <- rbind(rows, data.frame(what = "loglik", name = "logLik", estimate = as.numeric(logLik(fit)), se = NA))
  rows <- rbind(rows, data.frame(what = "df", name = "df", estimate = attr(logLik(fit), "df"), se = NA))
  write.table(rows, file.path(out, paste0(name, ".tsv")), sep = "\t", quote = FALSE, row.names = FALSE)
}

data(sleepstudy, package = "lme4")
write.csv(sleepstudy, file.path(data_out, "sleepstudy.csv"), row.names = FALSE)
write_fit("sleepstudy_reml", lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = TRUE), "lme4")
write_fit("sleepstudy_ml", lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE), "lme4")
write_fit("sleepstudy_uncorr_reml", lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), sleepstudy), "lme4")

data(cbpp, package = "lme4")
write.csv(cbpp, file.path(data_out, "cbpp.csv"), row.names = FALSE)
cbpp_fit <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial,
                  control = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5)))
write_fit("cbpp_laplace", cbpp_fit, "lme4")
# glmmTMB: the same Laplace likelihood with an exact (AD) Hessian; its SEs are the reference for
# GLMM standard errors (lme4's come from a finite-difference Hessian of a PIRLS converged to 1e-7).
write_fit("cbpp_tmb", glmmTMB(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial),
          "glmmTMB")
cbpp_agq <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, nAGQ = 25)
write_fit("cbpp_agq25", cbpp_agq, "lme4")

data(grouseticks, package = "lme4")
gt <- grouseticks[, c("INDEX", "TICKS", "BROOD", "HEIGHT", "YEAR", "LOCATION")]
write.csv(gt, file.path(data_out, "grouseticks.csv"), row.names = FALSE)
gt$cHEIGHT <- gt$HEIGHT - mean(gt$HEIGHT)
write_fit("grouseticks_laplace",
          glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), gt, family = poisson,
                control = glmerControl(optimizer = "bobyqa")), "lme4")

write_fit("grouseticks_tmb",
          glmmTMB(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), gt, family = poisson), "glmmTMB")

data(Owls, package = "glmmTMB")
owls <- Owls[, c("Nest", "FoodTreatment", "SexParent", "ArrivalTime", "SiblingNegotiation", "BroodSize")]
write.csv(owls, file.path(data_out, "owls.csv"), row.names = FALSE)
write_fit("owls_nb2", glmmTMB(SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest),
                              data = owls, family = nbinom2), "glmmTMB")
write_fit("owls_poisson", glmmTMB(SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest),
                                  data = owls, family = poisson), "glmmTMB")

writeLines(c(R.version.string, paste("lme4", packageVersion("lme4")), paste("glmmTMB", packageVersion("glmmTMB"))),
           file.path(out, "versions.txt"))
