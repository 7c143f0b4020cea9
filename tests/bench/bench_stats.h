/*
 * The spread of a benchmark's paired measurements (bench_engine's decode
 * rounds against the bandwidth probe, bench_capture's capture runs
 * against the engine alone): on a shared VM whose speed drifts, the
 * median of the pairs' ratios, printed with their range.
 */
#ifndef IKV_BENCH_STATS_H
#define IKV_BENCH_STATS_H

#include <stdlib.h>

typedef struct bench_spread {
    double median; /* v[n / 2] once sorted: the median for odd n */
    double low, high;
} bench_spread;

static int bench_compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v[0..n) (n > 0) in place and returns its spread. */
static inline bench_spread bench_spread_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_compare_doubles);
    return (bench_spread){v[n / 2], v[0], v[n - 1]};
}

#endif
