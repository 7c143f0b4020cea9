/*
 * Jobs of a simulation: policies x parameter values x budgets x scenarios,
 * expanded from command-line style lists.
 */
#ifndef IKV_SIM_JOBS_H
#define IKV_SIM_JOBS_H

#include <stddef.h>

#include "infokv/core.h"

typedef struct ikv_sim_job {
    ikv_params params;
    char policy[16];   /* policy name */
    char param_text[192]; /* canonical non-default parameters, "-" if none */
    char budget_text[32]; /* as given: "128", "25%"; "all" for full */
    char scenario[8];  /* "prefill" or "decode" */
} ikv_sim_job;

typedef struct ikv_sim_jobs {
    ikv_sim_job *jobs;
    int n;
} ikv_sim_jobs;

/* A parameter sweep "policy.key=v1,v2" (or "key=v1,v2" for every policy
 * that accepts the key). */
typedef struct ikv_sweep {
    char policy[16]; /* "" = every policy accepting the key */
    char key[32];
    char values[16][32];
    int n_values;
} ikv_sweep;

/* Parses one --param argument. */
int ikv_sweep_parse(const char *text, ikv_sweep *sweep, char *err, size_t errlen);

/* Expands policies (comma list, "all"), budgets (comma list of counts or
 * fractions) and scenarios ("prefill", "decode", "prefill,decode") with
 * the sweeps into jobs. `full` gets one job per scenario (budget "all").
 * Every combination is validated by ikv_params_set. */
int ikv_sim_jobs_expand(const char *policies, const char *budgets, const char *scenarios,
                        const ikv_sweep *sweeps, int n_sweeps, ikv_sim_jobs *out,
                        char *err, size_t errlen);

/* Index of the job with this configuration (policy, canonical parameter
 * text as ikv_params_format writes it or "-", budget text, scenario), or
 * -1. */
int ikv_sim_jobs_find(const ikv_sim_jobs *jobs, const char *policy, const char *params,
                      const char *budget, const char *scenario);

/* Appends one job from the same four texts (e.g. a live run recorded in a
 * trace); returns its index, or -1 with one line in err. */
int ikv_sim_jobs_add(ikv_sim_jobs *jobs, const char *policy, const char *params, const char *budget,
                     const char *scenario, char *err, size_t errlen);

void ikv_sim_jobs_free(ikv_sim_jobs *jobs);

#endif
