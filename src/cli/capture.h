/*
 * infokv-capture's pieces shared by its source files: options, the run
 * (model, prompt, sampler) and the generation loop; live eviction
 * (capture_live.c) and exact Forward Influence (capture_influence.c).
 */
#ifndef IKV_CLI_CAPTURE_H
#define IKV_CLI_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "model/sampler.h"
#include "model/session.h"
#include "sim/jobs.h"
#include "trace/trace.h"

typedef struct capture_options {
    const char *model_path;
    const char *tokenizer_path; /* NULL: beside the model (llama2.c) */
    const char *prompt;         /* -p */
    const char *prompt_file;    /* -f */
    const char *jsonl;          /* --jsonl */
    const char *field;          /* --field (question) */
    long index;                 /* --index (0) */
    int steps;                  /* total positions, prompt included; 0: the model's context */
    float temperature;
    float top_p;
    uint64_t seed;
    int seed_given;
    int threads;                /* 0: OpenMP's default */
    int quiet;
    /* trace */
    const char *out_path;       /* -o */
    unsigned signals;           /* --save */
    ikv_trace_dtype dtype;      /* --dtype */
    int deflate_level;          /* --deflate: 0 = stored as is */
    int layers[1024];           /* --layers */
    int n_layers;
    int topk;                   /* --topk */
    double attn_limit_mb;       /* --max-attn */
    int force;                  /* --force */
    int durable;                /* --fsync */
    char command[4096];         /* the command line, for the trace */
    /* live eviction (closed loop) */
    const char *policies;       /* --policy LIST */
    const char *budgets;        /* --budget LIST */
    const char *scenarios;      /* --scenario LIST */
    ikv_sweep sweeps[16];       /* --param */
    int n_sweeps;
    /* exact Forward Influence */
    int influence;              /* --influence N tokens per set */
    unsigned influence_sets;    /* --influence-set: bit 0 attention, 1 entropy, 2 random */
    uint64_t influence_seed;
} capture_options;

typedef struct run_context {
    ikv_model *model;
    const ikv_model_details *info;
    const ikv_tokenizer *tok;
    int32_t *tokens;  /* [steps] positions to run (prompt first) */
    int n_prompt;     /* prompt positions that run (cut to steps) */
    int n_prompt_all; /* prompt tokens before the cut */
    int steps;        /* most positions the run may take */
    ikv_sampler *sampler;
    char *piece;
    size_t piece_cap;
} run_context;

/* Called after each chunk of positions ran (positions < n_past). */
typedef int (*after_fn)(void *user, int n_past);

typedef struct run_stats {
    int n_run;          /* positions that ran */
    int n_decode;
    int32_t last;       /* sampled after the last position, printed, not run; -1 if none */
    double t_prefill, t_decode;
    int stopped;        /* by a signal */
} run_stats;

/* capture.c */
void capture_print_piece(run_context *rc, int32_t prev, int32_t id);

/* capture_live.c: every (policy, budget, parameters, scenario) of the
 * options, each a compressed session following the full-cache run token
 * by token (teacher forcing). */
typedef struct live_set live_set;
/* NULL when the options name no policy. */
live_set *live_set_create(const capture_options *o, run_context *rc, char *err, size_t errlen);
/* The full run processed tokens[from..to) at positions from..to-1; the
 * compressed runs do too and compare their next-token distributions with
 * the full one's. */
int live_set_advance(live_set *ls, const ikv_session *full, const int32_t *tokens, int from, int to,
                     char *err, size_t errlen);
/* Free-running greedy runs (for the divergence step), then the live group in the
 * trace (w may be NULL) and a summary line per run on stderr. */
int live_set_finish(live_set *ls, const capture_options *o, run_context *rc, int n_run,
                    ikv_trace_writer *w, char *err, size_t errlen);
void live_set_free(live_set *ls);

/* capture_influence.c: exact Forward Influence of o->influence tokens per
 * set, written to the influence group (w may be NULL) and summarised on stderr. */
int influence_run(const capture_options *o, run_context *rc, int n_run, ikv_trace_writer *w, char *err,
                  size_t errlen);

#endif
