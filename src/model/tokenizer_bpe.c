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
    float priority;
    int32_t left, right;     /* symbol positions */
    int32_t ltok, rtok;      /* their tokens when the candidate was made */
    int32_t merged;
} ikv_bpe_cand;

/* ---- pair table ---------------------------------------------------------- */

static uint32_t pair_hash(int32_t l, int32_t r)
{
    uint64_t h = (uint64_t)(uint32_t)l * 0x9e3779b97f4a7c15ull ^
                 (uint64_t)(uint32_t)r * 0xc2b2ae3d27d4eb4full;
    h ^= h >> 31;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 29;
    return (uint32_t)h;
}

static ikv_pair_slot *slot_of(const ikv_pair_table *pt, int32_t l, int32_t r)
{
    uint32_t i = pair_hash(l, r) & pt->mask;
    while (pt->slots[i].left >= 0 && (pt->slots[i].left != l || pt->slots[i].right != r))
        i = (i + 1) & pt->mask;
    return &pt->slots[i];
}

static int table_alloc(ikv_pair_table *pt, uint32_t cap)
{
    pt->slots = malloc((size_t)cap * sizeof *pt->slots);
    if (!pt->slots)
        return IKV_ENOMEM;
    for (uint32_t i = 0; i < cap; i++)
        pt->slots[i].left = -1;
    pt->mask = cap - 1;
    return 0;
}

int ikv_pair_table_init(ikv_pair_table *pt, size_t expected)
{
    pt->n = 0;
    uint32_t cap = 64;
    while (cap < 2 * expected && cap < (1u << 30))
        cap *= 2;
    return table_alloc(pt, cap);
}

void ikv_pair_table_free(ikv_pair_table *pt)
{
    free(pt->slots);
    pt->slots = NULL;
    pt->n = 0;
}

int ikv_pair_table_add(ikv_pair_table *pt, int32_t left, int32_t right, int32_t merged,
                       float priority)
{
    if (2 * (size_t)(pt->n + 1) > (size_t)pt->mask + 1) { /* keep load <= 1/2 */
        ikv_pair_table old = *pt;
        if ((size_t)old.mask + 1 >= (1u << 30) || table_alloc(pt, 2 * (old.mask + 1)) < 0) {
            *pt = old;
            return IKV_ENOMEM;
        }
        for (uint32_t i = 0; i <= old.mask; i++)
            if (old.slots[i].left >= 0)
                *slot_of(pt, old.slots[i].left, old.slots[i].right) = old.slots[i];
        free(old.slots);
    }
    ikv_pair_slot *s = slot_of(pt, left, right);
    if (s->left >= 0)
        return 0;
    s->left = left;
    s->right = right;
    s->merged = merged;
    s->priority = priority;
    pt->n++;
    return 1;
}

const ikv_pair_slot *ikv_pair_table_find(const ikv_pair_table *pt, int32_t left,
                                         int32_t right)
{
    if (!pt->slots || pt->n == 0)
        return NULL;
    const ikv_pair_slot *s = slot_of(pt, left, right);
    return s->left >= 0 ? s : NULL;
}

/* ---- merge loop ------------------------------------------------------------ */

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

static void try_pair(const int32_t *syms, int left, int right, const ikv_pair_table *pt,
                     ikv_bpe_cand *heap, int *nheap)
{
    const ikv_pair_slot *s = ikv_pair_table_find(pt, syms[left], syms[right]);
    if (!s)
        return;
    ikv_bpe_cand c;
    c.merged = s->merged;
    c.priority = s->priority;
    c.left = left;
    c.right = right;
    c.ltok = syms[left];
    c.rtok = syms[right];
    heap_push(heap, nheap, c);
}

int ikv_bpe_merge(int32_t *syms, int n, const ikv_pair_table *pt, ikv_bpe_work *w)
{
    if (n < 2 || pt->n == 0)
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
        try_pair(syms, i, i + 1, pt, heap, &nheap);

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
            try_pair(syms, prev[c.left], c.left, pt, heap, &nheap);
        if (after < n)
            try_pair(syms, c.left, after, pt, heap, &nheap);
    }

    int m = 0;
    for (int i = 0; i < n; i = next[i])
        syms[m++] = syms[i];
    return m;
}
