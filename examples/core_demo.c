/*
 * core_demo: how an inference engine uses the infokv eviction core.
 *
 * A toy "engine" with one layer of 4 query heads over 2 KV heads keeps its
 * KV cache as slots; attention comes from synthetic scores that favour a
 * few "important" tokens and recent ones. Every policy compresses a
 * 64-token prompt to 16 slots and then decodes 32 tokens, evicting as it
 * goes; the demo prints what each policy kept. Build against an installed
 * infokv:  cc core_demo.c $(pkg-config --cflags --libs infokv) -lm
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <infokv/core.h>

enum { LAYERS = 1, HEADS = 4, KV_HEADS = 2, PROMPT = 64, DECODE = 32, CAP = PROMPT + DECODE };

/* What the engine keeps per slot: here just the position (a real engine
 * keeps K and V rows). */
static int cache[LAYERS][KV_HEADS][CAP];
static int cache_len[LAYERS];

static float score_of(int head, int query, int key)
{
    float s = (key % 13 == 0) ? 3.0f : 0.0f;      /* "important" tokens */
    s += 2.0f * expf(-(float)(query - key) / 4.0f); /* recency */
    s += 0.3f * sinf((float)(head * 7 + key));      /* head diversity */
    return s;
}

/* Softmax of query `q` over the current slots of every head. */
static void attention_row(int q, float *probs /* [HEADS][CAP] */)
{
    for (int h = 0; h < HEADS; h++) {
        int g = h / (HEADS / KV_HEADS);
        float *row = probs + h * CAP, sum = 0.0f;
        for (int i = 0; i < cache_len[0]; i++)
            sum += row[i] = expf(score_of(h, q, cache[0][g][i]));
        for (int i = 0; i < cache_len[0]; i++)
            row[i] /= sum;
    }
}

static int apply_step(ikv_policy *p)
{
    int evicted;
    if (ikv_policy_step(p, &evicted) != IKV_OK)
        return -1;
    for (int g = 0; evicted && g < KV_HEADS; g++) {
        const ikv_move *moves;
        int n;
        ikv_policy_moves(p, 0, g, &moves, &n);
        for (int m = 0; m < n; m++)
            cache[0][g][moves[m].dst] = cache[0][g][moves[m].src];
    }
    cache_len[0] = ikv_policy_cache_len(p, 0);
    return evicted;
}

int main(void)
{
    static float probs[HEADS * CAP];
    ikv_shape shape = {LAYERS, HEADS, KV_HEADS, 0, 0, CAP};
    const char *policies[] = {"full", "random", "streaming", "h2o", "tova", "snapkv", "infokv"};
    for (size_t k = 0; k < sizeof policies / sizeof *policies; k++) {
        char err[256];
        ikv_policy_kind kind;
        ikv_policy *p;
        ikv_policy_from_name(policies[k], &kind);
        ikv_params params = ikv_default_params(kind);
        if (ikv_params_parse(&params, "budget=16,scenario=decode", err, sizeof err) != IKV_OK ||
            (kind == IKV_POLICY_SNAPKV && ikv_params_parse(&params, "window=4,interval=8", err, sizeof err)) ||
            (kind == IKV_POLICY_INFOKV && ikv_params_parse(&params, "alpha=0", err, sizeof err)) ||
            ikv_policy_create(&p, &params, &shape, err, sizeof err) != IKV_OK) {
            fprintf(stderr, "core_demo: %s\n", err);
            return 1;
        }
        ikv_policy_begin(p, PROMPT, PROMPT + DECODE);
        cache_len[0] = 0;
        int total_evicted = 0;
        for (int t = 0; t < PROMPT + DECODE; t++) {
            ikv_policy_append(p, t);
            for (int g = 0; g < KV_HEADS; g++)
                cache[0][g][cache_len[0]] = t;
            cache_len[0]++;
            if (t < PROMPT - 1)
                continue; /* prefill: attend once the prompt is cached */
            if (t == PROMPT - 1) {
                for (int q = 0; q < PROMPT; q++) {
                    /* causal row of query q over slots 0..q */
                    int saved = cache_len[0];
                    cache_len[0] = q + 1;
                    attention_row(q, probs);
                    cache_len[0] = saved;
                    ikv_policy_observe_attention(p, 0, q, probs, q + 1, CAP);
                }
            } else {
                attention_row(t, probs);
                ikv_policy_observe_attention(p, 0, t, probs, cache_len[0], CAP);
            }
            int e = apply_step(p);
            if (e < 0) {
                fprintf(stderr, "core_demo: %s\n", ikv_policy_error(p));
                return 1;
            }
            total_evicted += e;
        }
        printf("%-10s kept %2d slots, evicted %3d (all heads); KV head 0 holds:", policies[k],
               cache_len[0], total_evicted);
        /* print in position order */
        for (int pos = 0; pos < CAP; pos++)
            for (int i = 0; i < cache_len[0]; i++)
                if (cache[0][0][i] == pos)
                    printf(" %d", pos);
        printf("\n");
        ikv_policy_free(p);
    }
    return 0;
}
