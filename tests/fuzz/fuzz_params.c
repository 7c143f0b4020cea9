/*
 * Fuzz harness: the key=value parameter parser of the eviction core
 * (ikv_params_parse, ikv_budget_parse), the simulator's --param sweeps and
 * job expansion, and a short run of the policy the parameters configure.
 *
 * Input: a policy byte, a shape byte, a prompt-length byte, a length
 * byte, then lines: the key=value list, the budget, a --param sweep, a
 * --policies list; the bytes after the fourth line are attention weights,
 * entropies and evolutions (used cyclically).
 * Checks: every error is one line; a list that parses formats to a
 * canonical text that parses back to the same parameters; jobs carry
 * their parameters; and the policy, run through prefill and decode, keeps
 * a consistent cache (moves compact it, positions stay unique and seen,
 * lengths never grow past what was appended).
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "infokv/core.h"
#include "sim/jobs.h"

#define MAX_T 48

static char *line(ikv_fuzz_input *in)
{
    const uint8_t *p;
    size_t n = ikv_fuzz_until(in, '\n', 300, &p);
    char *s = malloc(n + 1);
    IKV_FUZZ_CHECK(s != NULL);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* format -> parse -> the same parameters and the same text */
static void check_canonical(const ikv_params *p)
{
    char text[1024], again[1024], err[512];
    int len = ikv_params_format(p, text, sizeof text);
    IKV_FUZZ_CHECK(len >= 0 && (size_t)len < sizeof text);
    ikv_params q = ikv_default_params(p->policy);
    q.budget = p->budget;
    q.scenario = p->scenario;
    int rc = ikv_params_parse(&q, text, err, sizeof err);
    if (rc != IKV_OK)
        ikv_fuzz_check_message(err, NULL);
    IKV_FUZZ_CHECK(rc == IKV_OK);
    IKV_FUZZ_CHECK(ikv_params_format(&q, again, sizeof again) == len);
    IKV_FUZZ_CHECK(strcmp(text, again) == 0);
    IKV_FUZZ_CHECK(memcmp(&q, p, sizeof q) == 0);
}

typedef struct bytes {
    const uint8_t *p;
    size_t n, at;
} bytes;

static float next_unit(bytes *b)
{
    if (b->n == 0)
        return 0.5f;
    return (float)b->p[b->at++ % b->n] / 255.0f;
}

/* Invariants of every (layer, KV head) cache after a step. */
static void check_cache(const ikv_policy *pol, const ikv_shape *sh, int old_len[], int32_t t)
{
    int layers = sh->layer_count;
    for (int l = 0; l < layers; l++) {
        int layer = sh->layer_first + l;
        int n = ikv_policy_cache_len(pol, layer);
        IKV_FUZZ_CHECK(n >= 0 && n <= old_len[l] && n <= t + 1);
        for (int g = 0; g < sh->n_kv_heads; g++) {
            const ikv_move *moves;
            int n_moves = 0;
            IKV_FUZZ_CHECK(ikv_policy_moves(pol, layer, g, &moves, &n_moves) == IKV_OK);
            for (int i = 0; i < n_moves; i++)
                IKV_FUZZ_CHECK(moves[i].dst >= 0 && moves[i].dst < n && moves[i].src >= n &&
                               moves[i].src < old_len[l]);
            const int32_t *pos = ikv_policy_positions(pol, layer, g);
            IKV_FUZZ_CHECK(n == 0 || pos != NULL);
            unsigned char seen[MAX_T] = {0};
            for (int i = 0; i < n; i++) {
                IKV_FUZZ_CHECK(pos[i] >= 0 && pos[i] <= t && !seen[pos[i]]);
                seen[pos[i]] = 1;
            }
        }
        old_len[l] = n;
    }
}

static void feed(ikv_policy *pol, const ikv_shape *sh, unsigned needs, int32_t t, bytes *b)
{
    if (needs & IKV_NEED_ENTROPY)
        IKV_FUZZ_CHECK(ikv_policy_observe_entropy(pol, t, 5.0f * next_unit(b)) == IKV_OK);
    for (int l = 0; l < sh->layer_count; l++)
        if (needs & IKV_NEED_EVOLUTION)
            IKV_FUZZ_CHECK(ikv_policy_observe_evolution(pol, sh->layer_first + l, t, next_unit(b)) == IKV_OK);
}

static void observe(ikv_policy *pol, const ikv_shape *sh, unsigned needs, int32_t q, int n_keys,
                    bytes *b)
{
    float rows[8 * MAX_T], fut[8 * MAX_T];
    for (int l = 0; l < sh->layer_count; l++) {
        int layer = sh->layer_first + l;
        if ((needs & IKV_NEED_ATTENTION) && ikv_policy_wants_row(pol, layer, q)) {
            for (int h = 0; h < sh->n_heads; h++) {
                float sum = 0.0f;
                for (int i = 0; i < n_keys; i++)
                    sum += rows[h * MAX_T + i] = next_unit(b) + 1e-3f;
                for (int i = 0; i < n_keys; i++)
                    rows[h * MAX_T + i] /= sum;
            }
            int rc = ikv_policy_observe_attention(pol, layer, q, rows, n_keys, MAX_T);
            if (rc != IKV_OK)
                ikv_fuzz_check_message(ikv_policy_error(pol), NULL);
            IKV_FUZZ_CHECK(rc == IKV_OK);
        }
        if (needs & IKV_NEED_FUTURE) {
            for (int i = 0; i < sh->n_kv_heads * MAX_T; i++)
                fut[i] = next_unit(b);
            IKV_FUZZ_CHECK(ikv_policy_observe_future(pol, layer, fut, MAX_T) == IKV_OK);
        }
    }
}

static void run_policy(const ikv_params *params, unsigned shape_byte, int P, int T, bytes *b)
{
    static const int heads[][2] = {{1, 1}, {2, 1}, {2, 2}, {4, 2}, {8, 2}, {4, 4}, {8, 8}, {3, 1}};
    ikv_shape sh = {
        .n_layers = 1 + (int)(shape_byte >> 3) % 4,
        .n_heads = heads[shape_byte & 7][0],
        .n_kv_heads = heads[shape_byte & 7][1],
        .capacity = T,
    };
    sh.layer_first = (int)(shape_byte >> 5) % sh.n_layers;
    sh.layer_count = sh.n_layers - sh.layer_first;
    char err[512];
    ikv_policy *pol;
    int rc = ikv_policy_create(&pol, params, &sh, err, sizeof err);
    if (rc != IKV_OK) {
        IKV_FUZZ_CHECK(pol == NULL);
        ikv_fuzz_check_message(err, NULL);
        return;
    }
    rc = ikv_policy_begin(pol, P, T);
    if (rc != IKV_OK) {
        ikv_fuzz_check_message(ikv_policy_error(pol), NULL);
        ikv_policy_free(pol);
        return;
    }
    for (int l = 0; l < sh.layer_count; l++)
        IKV_FUZZ_CHECK(ikv_policy_layer_budget(pol, sh.layer_first + l) >= 0);
    unsigned needs = ikv_policy_needs(pol);
    int old_len[4];
    for (int32_t t = 0; t < P; t++)
        IKV_FUZZ_CHECK(ikv_policy_append(pol, t) == IKV_OK);
    for (int l = 0; l < sh.layer_count; l++)
        old_len[l] = P;
    for (int32_t q = 0; q < P; q++)
        observe(pol, &sh, needs & ~IKV_NEED_FUTURE, q, q + 1, b);
    for (int32_t t = 0; t < P; t++)
        feed(pol, &sh, needs, t, b);
    observe(pol, &sh, needs & IKV_NEED_FUTURE, P - 1, 0, b);
    IKV_FUZZ_CHECK(ikv_policy_step(pol, NULL) == IKV_OK);
    check_cache(pol, &sh, old_len, P - 1);
    for (int32_t t = P; t < T; t++) {
        IKV_FUZZ_CHECK(ikv_policy_append(pol, t) == IKV_OK);
        for (int l = 0; l < sh.layer_count; l++) {
            int n = ikv_policy_cache_len(pol, sh.layer_first + l);
            IKV_FUZZ_CHECK(n == old_len[l] + 1);
            old_len[l] = n;
        }
        observe(pol, &sh, needs, t, ikv_policy_cache_len(pol, sh.layer_first), b);
        feed(pol, &sh, needs, t, b);
        int evicted = -1;
        IKV_FUZZ_CHECK(ikv_policy_step(pol, &evicted) == IKV_OK);
        IKV_FUZZ_CHECK(evicted >= 0);
        check_cache(pol, &sh, old_len, t);
    }
    /* past the capacity: refused */
    IKV_FUZZ_CHECK(ikv_policy_append(pol, T) != IKV_OK);
    ikv_policy_free(pol);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ikv_fuzz_input in = {data, size, 0};
    ikv_policy_kind kind = (ikv_policy_kind)(ikv_fuzz_u8(&in) % IKV_POLICY_COUNT);
    unsigned shape_byte = ikv_fuzz_u8(&in);
    int P = 1 + ikv_fuzz_u8(&in) % 32;
    int T = P + ikv_fuzz_u8(&in) % (MAX_T - P + 1);
    char *list = line(&in), *budget = line(&in), *sweep = line(&in), *policies = line(&in);
    bytes b = {data + in.pos, in.size - in.pos, 0};
    char err[512];

    ikv_params p = ikv_default_params(kind);
    int rc = ikv_params_parse(&p, list, err, sizeof err);
    if (rc != IKV_OK) {
        IKV_FUZZ_CHECK(rc == IKV_EINVAL);
        ikv_fuzz_check_message(err, NULL);
    } else {
        check_canonical(&p);
        run_policy(&p, shape_byte, P, T, &b);
    }

    ikv_budget bud;
    rc = ikv_budget_parse(budget, &bud, err, sizeof err);
    if (rc != IKV_OK) {
        ikv_fuzz_check_message(err, NULL);
    } else {
        IKV_FUZZ_CHECK(bud.is_fraction ? (bud.value > 0.0 && bud.value <= 1.0)
                                       : (bud.value >= 1.0 && bud.value <= 1e9 && bud.value == floor(bud.value)));
    }

    ikv_sweep sw;
    rc = ikv_sweep_parse(sweep, &sw, err, sizeof err);
    if (rc != 0) {
        ikv_fuzz_check_message(err, NULL);
    } else {
        IKV_FUZZ_CHECK(sw.n_values >= 1 && sw.n_values <= 16 && sw.key[0]);
        ikv_sim_jobs jobs;
        rc = ikv_sim_jobs_expand(policies[0] ? policies : "all", budget[0] ? budget : "8",
                                 "prefill,decode", &sw, 1, &jobs, err, sizeof err);
        if (rc != 0) {
            ikv_fuzz_check_message(err, NULL);
        } else {
            IKV_FUZZ_CHECK(jobs.n >= 1);
            for (int i = 0; i < jobs.n; i++) {
                const ikv_sim_job *j = &jobs.jobs[i];
                IKV_FUZZ_CHECK(strcmp(ikv_policy_name(j->params.policy), j->policy) == 0);
                char text[256];
                ikv_params_format(&j->params, text, sizeof text);
                IKV_FUZZ_CHECK(strcmp(text[0] ? text : "-", j->param_text) == 0);
            }
            ikv_sim_jobs_free(&jobs);
        }
    }
    free(list);
    free(budget);
    free(sweep);
    free(policies);
    return 0;
}
