/*
 * The pair-merge loop shared by both tokenizers. llama2.c's encode() scans
 * every adjacent pair, merges the best one (ties: the leftmost) and starts
 * over: O(n^2) look-ups. The same order comes out of a priority queue of
 * candidate pairs keyed by (priority, left position), with candidates
 * checked when popped: a merge changes only its two neighbouring pairs, and
 * symbols keep their relative order, so the leftmost-first rule holds with
 * original positions. Byte-level BPE (lowest rank first) uses the same loop
 * with priority = -rank.
 */
#include "config.h"

#include <stdlib.h>

#include "infokv/core.h"
#include "model/tokenizer_internal.h"

typedef struct ikv_bpe_cand {
    double priority;
    int32_t left, right;     /* symbol positions */
    int32_t ltok, rtok;      /* their tokens when the candidate was made */
    int32_t merged;
} ikv_bpe_cand;

void ikv_bpe_work_free(ikv_bpe_work *w)
{
    if (!w)
        return;
    free(w->next);
    free(w->prev);
    free(w->heap);
    w->next = w->prev = NULL;
    w->heap = NULL;
    w->cap = 0;
}

static int work_reserve(ikv_bpe_work *w, int n)
{
    if (n <= w->cap)
        return 0;
    int cap = w->cap ? w->cap : 64;
    while (cap < n)
        cap = cap > (1 << 28) ? n : cap * 2;
    int32_t *next = realloc(w->next, (size_t)cap * sizeof *next);
    if (!next)
        return IKV_ENOMEM;
    w->next = next;
    int32_t *prev = realloc(w->prev, (size_t)cap * sizeof *prev);
    if (!prev)
        return IKV_ENOMEM;
    w->prev = prev;
    ikv_bpe_cand *heap = realloc(w->heap, (size_t)cap * 3 * sizeof *heap);
    if (!heap)
        return IKV_ENOMEM;
    w->heap = heap;
    w->cap = cap;
    return 0;
}

/* a pops before b */
static int cand_before(const ikv_bpe_cand *a, const ikv_bpe_cand *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->left < b->left;
}

static void heap_push(ikv_bpe_cand *h, int *n, ikv_bpe_cand c)
{
    int i = (*n)++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!cand_before(&c, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = c;
}

static ikv_bpe_cand heap_pop(ikv_bpe_cand *h, int *n)
{
    ikv_bpe_cand top = h[0];
    ikv_bpe_cand last = h[--(*n)];
    int i = 0;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= *n)
            break;
        if (child + 1 < *n && cand_before(&h[child + 1], &h[child]))
            child++;
        if (!cand_before(&h[child], &last))
            break;
        h[i] = h[child];
        i = child;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

static void try_pair(const int32_t *syms, int left, int right, ikv_pair_fn pair,
                     const void *ctx, ikv_bpe_cand *heap, int *nheap)
{
    ikv_bpe_cand c;
    if (!pair(ctx, syms[left], syms[right], &c.merged, &c.priority))
        return;
    c.left = left;
    c.right = right;
    c.ltok = syms[left];
    c.rtok = syms[right];
    heap_push(heap, nheap, c);
}

int ikv_bpe_merge(int32_t *syms, int n, ikv_pair_fn pair, const void *ctx,
                  ikv_bpe_work *w)
{
    if (n < 2)
        return n;
    int rc = work_reserve(w, n);
    if (rc < 0)
        return rc;
    int32_t *next = w->next, *prev = w->prev;
    ikv_bpe_cand *heap = w->heap;
    int nheap = 0;
    for (int i = 0; i < n; i++) {
        next[i] = i + 1;
        prev[i] = i - 1;
    }
    for (int i = 0; i + 1 < n; i++)
        try_pair(syms, i, i + 1, pair, ctx, heap, &nheap);

    /* Each merge pushes at most two candidates: the heap never exceeds
     * (n - 1) + 2 (n - 1) < 3n entries. */
    while (nheap > 0) {
        ikv_bpe_cand c = heap_pop(heap, &nheap);
        /* Stale when either symbol changed or they stopped being adjacent
         * (a merged-away symbol holds -1). */
        if (syms[c.left] != c.ltok || syms[c.right] != c.rtok || next[c.left] != c.right)
            continue;
        syms[c.left] = c.merged;
        syms[c.right] = -1;
        int after = next[c.right];
        next[c.left] = after;
        if (after < n)
            prev[after] = c.left;
        if (prev[c.left] >= 0)
            try_pair(syms, prev[c.left], c.left, pair, ctx, heap, &nheap);
        if (after < n)
            try_pair(syms, c.left, after, pair, ctx, heap, &nheap);
    }

    int m = 0;
    for (int i = 0; i < n; i = next[i])
        syms[m++] = syms[i];
    return m;
}
