/*
 * Top-k selection over ranks (score, then position): introselect.
 *
 * Quickselect with a median-of-three pivot is O(n) expected; if it recurses
 * deeper than 2 log2(n) levels (an adversarial or degenerate order), the
 * remaining range is finished with heapsort, bounding the worst case at
 * O(n log n). Only the partition matters to callers: ranks[0..k) are the k
 * best in no particular order. No allocation.
 */
#include "core/internal.h"

int ikv_rank_better(const ikv_rank *a, const ikv_rank *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    return a->pos > b->pos;
}

static void swap_rank(ikv_rank *a, ikv_rank *b)
{
    ikv_rank t = *a;
    *a = *b;
    *b = t;
}

static void insertion_sort(ikv_rank *r, int lo, int hi)
{
    for (int i = lo + 1; i < hi; i++) {
        ikv_rank x = r[i];
        int j = i - 1;
        while (j >= lo && ikv_rank_better(&x, &r[j])) {
            r[j + 1] = r[j];
            j--;
        }
        r[j + 1] = x;
    }
}

/* Heap on r[lo..hi) whose root is the worst element ("min-heap" by rank). */
static void sift_down(ikv_rank *r, int lo, int n, int i)
{
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && ikv_rank_better(&r[lo + c], &r[lo + c + 1]))
            c++;
        if (!ikv_rank_better(&r[lo + i], &r[lo + c]))
            return;
        swap_rank(&r[lo + i], &r[lo + c]);
        i = c;
    }
}

/* Sorts r[lo..hi) best first. */
static void heap_sort(ikv_rank *r, int lo, int hi)
{
    int n = hi - lo;
    for (int i = n / 2 - 1; i >= 0; i--)
        sift_down(r, lo, n, i);
    for (int end = n - 1; end > 0; end--) {
        swap_rank(&r[lo], &r[lo + end]); /* worst goes to the back */
        sift_down(r, lo, end, 0);
    }
}

static int median_of_three(const ikv_rank *r, int a, int b, int c)
{
    if (ikv_rank_better(&r[a], &r[b])) {
        if (ikv_rank_better(&r[b], &r[c]))
            return b;
        return ikv_rank_better(&r[a], &r[c]) ? c : a;
    }
    if (ikv_rank_better(&r[a], &r[c]))
        return a;
    return ikv_rank_better(&r[b], &r[c]) ? c : b;
}

/* Partitions r[lo..hi) around the median-of-three pivot; returns its final
 * index p: r[lo..p) better, r[p+1..hi) worse. */
static int partition(ikv_rank *r, int lo, int hi)
{
    int mid = lo + (hi - lo) / 2;
    int piv = median_of_three(r, lo, mid, hi - 1);
    swap_rank(&r[piv], &r[hi - 1]);
    ikv_rank pivot = r[hi - 1];
    int store = lo;
    for (int i = lo; i < hi - 1; i++) {
        if (ikv_rank_better(&r[i], &pivot)) {
            swap_rank(&r[i], &r[store]);
            store++;
        }
    }
    swap_rank(&r[store], &r[hi - 1]);
    return store;
}

/* Moves the single worst element to the back: the common decode case of
 * evicting one token per step, in one pass. The worst so far stays in
 * registers (this loop is most of decode's per-step cost). */
static void worst_to_back(ikv_rank *r, int n)
{
    int worst = 0;
    float worst_score = r[0].score;
    int32_t worst_pos = r[0].pos;
    for (int i = 1; i < n; i++) {
        const float s = r[i].score;
        if (s < worst_score || (s == worst_score && r[i].pos < worst_pos)) {
            worst = i;
            worst_score = s;
            worst_pos = r[i].pos;
        }
    }
    swap_rank(&r[worst], &r[n - 1]);
}

void ikv_select_top(ikv_rank *ranks, int n, int k)
{
    if (k <= 0 || k >= n)
        return;
    if (k == n - 1) {
        worst_to_back(ranks, n);
        return;
    }
    int lo = 0, hi = n;
    int depth = 0;
    for (int m = n; m > 1; m >>= 1)
        depth += 2;
    while (hi - lo > 16) {
        if (depth-- == 0) {
            heap_sort(ranks, lo, hi);
            return;
        }
        int p = partition(ranks, lo, hi);
        if (p == k || p + 1 == k)
            return;
        if (k < p)
            hi = p;
        else
            lo = p + 1;
    }
    insertion_sort(ranks, lo, hi);
}
