/*
 * A whole simulation: every trace x job, layer by layer. Memory holds one
 * layer of q/k/v (plus its full-cache reference) at a time; jobs of a
 * layer run in parallel (OpenMP), each through its own policy instance.
 */
#ifndef IKV_SIM_RUN_H
#define IKV_SIM_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "sim/influence.h"
#include "sim/jobs.h"
#include "sim/replay.h"

enum {
    IKV_SIM_OK = 0,
    IKV_SIM_ERUNTIME = -1, /* out of memory, I/O failure */
    IKV_SIM_EINPUT = -2,   /* bad or foreign trace, missing signal, impossible budget */
    IKV_SIM_ESTOPPED = -3  /* the caller asked to stop */
};

typedef struct ikv_sim_options {
    int fi_tokens;          /* tokens per Forward Influence set (16); 0 = none */
    int fi_per_bucket;      /* sampled queries per distance bucket (64) */
    uint64_t seed;          /* random token set */
    const int *layers;      /* model layers to replay, NULL = every stored layer */
    int n_layers;
    int skip_impossible;    /* 1: a budget a policy cannot honour on a trace is
                               skipped (noted in results); 0: it is an error */
    /* Which (trace, layer) units this process replays, for work spread
     * over processes (MPI ranks): unit u, numbered over traces then
     * replayed layers, runs when owns_unit(user, u) is true. Results of
     * units not run stay zero, so summing every process's results (see
     * ikv_sim_results_visit_sums) gives the whole. NULL: every unit. */
    int (*owns_unit)(void *user, int64_t unit);
    void (*progress)(void *user, int64_t done, int64_t total);
    void (*warn)(void *user, const char *message);
    void *user;
    int (*should_stop)(void);
} ikv_sim_options;

ikv_sim_options ikv_sim_default_options(void);

/* A live (closed-loop) run recorded in a trace by infokv-capture --policy. */
typedef struct ikv_sim_live {
    char policy[32];
    char params[192];
    char budget[32];
    char scenario[16];
    double mean_kl;       /* KL(p_full || p_compressed) over decode steps, nats */
    double agreement;     /* top-1 agreement over decode steps */
    int divergence;       /* generated token where free-running greedy departs; -1 none */
    int compared;         /* generated tokens compared */
    double peak_cache_bytes, full_cache_bytes;
    double bookkeeping_s, forward_s;
    int job;              /* the replay job of the same configuration */
} ikv_sim_live;

/* Results of one trace. Sums are over (query head, decode query) pairs
 * for recall/err and (KV head, step) for overlap; divide by the counts. */
typedef struct ikv_sim_trace_result {
    char path[4096];
    char name[256];      /* file name without directories and .h5 */
    char model[256];
    int T, P, H, G, d;
    int n_layers;        /* layers replayed */
    int *layers;         /* [n_layers] model layer indices */
    int *skipped;        /* [n_jobs] 1 if the job could not run on this trace */
    char (*skip_reason)[256]; /* [n_jobs] */
    int *budget_tokens;  /* [n_jobs] resolved budget B (mean over layers); 0 full */
    int *layer_budget;   /* [n_jobs][n_layers] budget of each replayed layer */
    ikv_sim_stats *cells;   /* [n_jobs][n_layers] (step arrays unused) */
    double *step_recall;    /* [n_jobs][T - P] sums over layers and heads */
    double *step_err;       /* [n_jobs][T - P] */
    ikv_fi_acc fi_sets[3];  /* top-attention, top-entropy, random */
    ikv_fi_acc *fi_evicted; /* [n_jobs] tokens the job evicted */
    /* along the sequence */
    int32_t *tokens;        /* [T] */
    float *entropy;         /* [T] full distribution, NaN if absent */
    float *entropy_topk;    /* [T] NaN if absent */
    float *received;        /* [T] attention received per later query,
                               mean over replayed layers and heads */
    float *evolution;       /* [T] mean over replayed layers, NaN if absent */
    /* closed loop, when the trace holds live runs */
    ikv_sim_live *live;     /* [n_live] */
    int n_live;
    /* exact Forward Influence probes, when the trace holds them */
    int n_probes;
    int32_t *probe_pos;     /* [n_probes] */
    int32_t *probe_set;     /* [n_probes] 0 attention, 1 entropy, 2 random */
    float *probe_kl;        /* [n_probes][T] exact: KL at t when probe_pos is removed */
    double *probe_fo;       /* [n_probes][T] first order: trace FI, mean over
                               replayed layers and heads */
} ikv_sim_trace_result;

typedef struct ikv_sim_results {
    const ikv_sim_jobs *jobs;
    ikv_sim_trace_result *traces;
    int n_traces;
} ikv_sim_results;

extern const char *const ikv_fi_set_names[3];

/* Adds a job for every live run recorded in the traces whose
 * configuration is not among the jobs yet, so that replay and live
 * numbers can be shown side by side. */
int ikv_sim_add_live_jobs(const char *const *paths, int n_paths, ikv_sim_jobs *jobs, char *err,
                          size_t errlen);

extern const char *const ikv_probe_set_names[3];

/* Runs everything; on failure err names the trace and the problem. */
int ikv_sim_run(const char *const *paths, int n_paths, const ikv_sim_jobs *jobs,
                const ikv_sim_options *opt, ikv_sim_results *res, char *err, size_t errlen);

void ikv_sim_results_free(ikv_sim_results *res);

/* Calls fn on every array of results that units add into (type 'd'
 * double, 'l' long, 'f' float), in the same order on every process, so
 * that a caller can sum them across processes in place. */
typedef void (*ikv_sum_visitor)(void *user, void *values, size_t count, char type);
int ikv_sim_results_visit_sums(ikv_sim_results *res, ikv_sum_visitor fn, void *user);

#endif
