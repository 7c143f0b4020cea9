/*
 * infokv-inspect's analysis of an open trace: summary statistics and, on
 * request, validation of the values (inspect_stats.c). inspect.c parses
 * the command line and prints.
 */
#ifndef IKV_CLI_INSPECT_H
#define IKV_CLI_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "trace/trace.h"

/* Problems found by --check (the first few kept verbatim) and notes about
 * what could not be checked. */
#define IKV_INSPECT_KEEP 16
typedef struct ikv_inspect_findings {
    int n_problems;
    char problems[IKV_INSPECT_KEEP][256];
    int n_notes;
    char notes[IKV_INSPECT_KEEP][256];
    int n_passed;                         /* checks that ran and passed */
    char passed[IKV_INSPECT_KEEP][256];
} ikv_inspect_findings;

typedef struct ikv_range_stat {
    int64_t n;
    double mean, min, max;
} ikv_range_stat;

typedef struct ikv_inspect_stats {
    ikv_range_stat entropy;       /* nats, n = 0 when absent */
    ikv_range_stat entropy_topk;  /* nats */
    int entropy_k;
    ikv_range_stat logprob;       /* positions 1..T-1 */
    ikv_range_stat evolution;     /* all layers and positions */
    double *evolution_per_layer;  /* [L'] mean over positions, or NULL */
    /* Attention, over stored layers, heads and rows t >= 1. */
    const char *attn_source;      /* "attn/probs", "q/k/lse" or NULL */
    ikv_range_stat first_token;   /* attention mass on position 0 */
    ikv_range_stat row_entropy;   /* nats of attention rows */
    int row_entropy_sampled;      /* 1: over sampled rows only */
} ikv_inspect_stats;

/* Computes the statistics and, with check = 1, validates every value.
 * Returns 0, or a negative ikv_trace_status with the message in err when
 * the trace cannot be read (corrupt data, out of memory). */
int ikv_inspect_analyse(ikv_trace_reader *r, int check, ikv_inspect_stats *st,
                        ikv_inspect_findings *found, char *err, size_t errlen);
void ikv_inspect_stats_free(ikv_inspect_stats *st);

#endif
