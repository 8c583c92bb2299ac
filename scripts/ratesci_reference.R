# Reference values of the paired difference's SCAS interval and test, from R ratesci.
#
# harness/stats.py gates a 0/1 metric's student - teacher difference at a non-zero margin
# with Laud's skewness-corrected asymptotic score (SCAS) method for paired proportions.
# R ratesci is that method's reference implementation (its author's); this script writes
# what it gives on a grid of paired tables, and tests/unit/test_stats.py checks the harness
# against it.
#
#   Rscript scripts/ratesci_reference.R [OUTDIR]     (default tests/data)
#
# Needs R with ratesci installed (Debian: r-base-core, r-cran-lifecycle; ratesci from
# https://github.com/petelaud/ratesci, `R CMD INSTALL .`). Writes
#   ratesci_intervals.csv  one row per table: n, a, b, c, d, the 90% and 95% interval ends;
#   ratesci_pvalues.csv    one row per table and margin: the one-sided p-value of
#                          "student - teacher >= margin" (ratesci's pval_left).
# Cells, in the harness's naming: a both right, b teacher right and student wrong, c student
# right and teacher wrong, d both wrong. ratesci takes x = c(a, c, b, d) so that its
# difference p1 - p2 is student - teacher.
#
# Settings: contrast "RD", skew = TRUE, bcf = FALSE (no N/(N-1) variance factor, as the
# harness), cc = 0.25 (ratesci doubles cc for RD: 0.5 on c - b - n * margin, the harness's
# continuity correction), precis = 10 (ends found to 1e-10; the default 6 rounds them to
# 1e-6).

suppressPackageStartupMessages(library(ratesci))

args <- commandArgs(trailingOnly = TRUE)
outdir <- if (length(args) >= 1) args[[1]] else file.path("tests", "data")

sizes <- c(30, 60, 100, 200, 500, 1000, 2000)
shares <- c(0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.45)
margins <- c(-0.10, -0.05, -0.02, 0.03)
levels <- c(0.90, 0.95)

tables <- list()
for (n in sizes) {
  seen <- character(0)
  pairs <- c(lapply(shares, function(fb) lapply(shares, function(fc) c(fb, fc))),
             list(list(c(1, 0), c(0, 1))))
  for (group in pairs) {
    for (f in group) {
      b <- round(f[1] * n)
      c_ <- round(f[2] * n)
      key <- paste(b, c_)
      if (key %in% seen) next
      seen <- c(seen, key)
      rest <- n - b - c_
      a <- floor(0.8 * rest)
      tables[[length(tables) + 1]] <- c(n = n, a = a, b = b, c = c_, d = rest - a)
    }
  }
}

fmt <- function(x) sprintf("%.15g", x)
header <- sprintf(
  "# ratesci %s, %s; made by scripts/ratesci_reference.R (scorepairci: RD, skew, bcf FALSE, cc 0.25)",
  as.character(packageVersion("ratesci")), R.version.string
)

interval_rows <- character(0)
pvalue_rows <- character(0)
for (tab in tables) {
  x <- c(tab[["a"]], tab[["c"]], tab[["b"]], tab[["d"]])
  ends <- character(0)
  for (level in levels) {
    fit <- scorepairci(x = x, contrast = "RD", level = level, skew = TRUE, bcf = FALSE,
                       cc = 0.25, precis = 10, warn = FALSE)
    ends <- c(ends, fmt(fit$estimates[1, "lower"]), fmt(fit$estimates[1, "upper"]))
  }
  cells <- c(tab[["n"]], tab[["a"]], tab[["b"]], tab[["c"]], tab[["d"]])
  interval_rows <- c(interval_rows, paste(c(cells, ends), collapse = ","))
  for (margin in margins) {
    fit <- scorepairci(x = x, contrast = "RD", level = 0.95, skew = TRUE, bcf = FALSE,
                       cc = 0.25, theta0 = margin, precis = 10, warn = FALSE)
    pvalue_rows <- c(pvalue_rows, paste(c(cells, fmt(margin), fmt(fit$pval[1, "pval_left"])),
                                        collapse = ","))
  }
}

dir.create(outdir, showWarnings = FALSE, recursive = TRUE)
writeLines(c(header, "n,a,b,c,d,lower_90,upper_90,lower_95,upper_95", interval_rows),
           file.path(outdir, "ratesci_intervals.csv"))
writeLines(c(header, "n,a,b,c,d,margin,p_value", pvalue_rows),
           file.path(outdir, "ratesci_pvalues.csv"))
cat(sprintf("%d tables, %d p-values written to %s\n", length(interval_rows),
            length(pvalue_rows), outdir))
