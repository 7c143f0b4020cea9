/*
 * What replay reads from a trace besides q/k/v, shared by the simulation
 * driver (run.c): entropy in the flavour each policy asks for, the live
 * runs and the exact influence probes recorded by infokv-capture.
 */
#ifndef IKV_SIM_INPUTS_H
#define IKV_SIM_INPUTS_H

#include <stddef.h>

#include "sim/run.h"
#include "trace/trace.h"

/* Entropy arrays by flavour (k = 0: full distribution, else top-k). */
typedef struct ikv_entropy_table {
    int k[32];
    float *values[32]; /* [T] each */
    int n;
} ikv_entropy_table;

void ikv_entropy_table_free(ikv_entropy_table *e);
/* The array of flavour k, or NULL when not loaded. */
const float *ikv_entropy_for(const ikv_entropy_table *e, int k);
/* Reads or derives flavour k from the trace (entropy, entropy_topk, or the
 * top-K log-probabilities); -1 with the reason in why. */
int ikv_entropy_load(ikv_trace_reader *r, const ikv_trace_spec *spec, int T, int k,
                     ikv_entropy_table *e, char *why, size_t whylen);

/* The live runs a trace holds (live/run0, live/run1, ...); IKV_SIM_*. */
int ikv_sim_read_live(ikv_trace_reader *r, ikv_sim_live **out, int *n_out, char *err, size_t errlen);
/* The exact influence probes (influence/pos, set, kl) into res; IKV_SIM_*. */
int ikv_sim_read_probes(ikv_trace_reader *r, int T, ikv_sim_trace_result *res, char *err, size_t errlen);

#endif
