/*
 * Compute kernels of the forward pass. Weights stay in their stored type
 * (F32, F16, BF16, Q8_0) and are converted to float a block at a time:
 *
 *   decode (one token): ikv_matvec streams each weight row once and dots
 *     it with x; bound by memory bandwidth. OpenMP over output rows.
 *   prefill (many tokens): ikv_matmul converts a block of rows a chunk of
 *     columns at a time and reuses it across every token, with the tokens
 *     packed column-wise so that a register tile of rows x tokens grows by
 *     broadcast-multiply-add; bound by arithmetic. OpenMP over row blocks.
 *
 * Q8_0 weights multiply activations quantised to Q8_0 as well, per 32
 * columns (kernels_q8.h): with AVX512-VNNI as exact int8 dot products,
 * elsewhere in float on the dequantised activations, the same function.
 *
 * Vector code is selected at compile time (kernels_isa.h): AVX-512F (with
 * VNNI), else AVX2+FMA+F16C, else portable C.
 */
#ifndef IKV_MODEL_KERNELS_H
#define IKV_MODEL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "model/wtype.h"

/* A weight matrix W[rows][cols] (rows = outputs, cols = inputs). */
typedef struct ikv_matrix {
    ikv_wtype type;
    const uint8_t *data; /* [rows][row_bytes] */
    int rows;
    int cols;
    size_t row_bytes;
} ikv_matrix;

/* Scratch memory of ikv_matmul, grown on demand and reused across calls
 * (zero-initialise it; release with ikv_workspace_free). */
typedef struct ikv_workspace {
    float *buf;
    size_t cap; /* floats */
} ikv_workspace;

void ikv_workspace_free(ikv_workspace *ws);

/* Floats of workspace that ikv_matvec / ikv_matmul need for these sizes,
 * and a way to reserve them ahead so that later products cannot fail. */
size_t ikv_matvec_workspace(const ikv_matrix *w);
size_t ikv_matmul_workspace(const ikv_matrix *w, int n, int n_threads);
int ikv_workspace_reserve(ikv_workspace *ws, size_t floats);

/* Name of the vector code compiled in: "avx512-vnni", "avx512", "avx2" or
 * "portable". */
const char *ikv_kernels_isa(void);

/* y[r] = W[r] . x for every row, with n_threads threads. Returns 0, or
 * IKV_ENOMEM when the workspace (Q8_0 only) cannot grow. */
int ikv_matvec(const ikv_matrix *w, const float *x /* [cols] */, float *y /* [rows] */,
               int n_threads, ikv_workspace *ws);

/* y_i = W_i x for n matrices that read the same x (q, k and v; gate and
 * up), with the results of n ikv_matvec calls. Matrices of one type and
 * width go through one parallel region: one wake of the threads instead
 * of n (tens of microseconds each on a VM with passive waiting) and,
 * for Q8_0 and BF16, one conversion of x. */
int ikv_matvec_group(const ikv_matrix *const *w, int n, const float *x /* [cols] */,
                     float *const *y /* [n][rows of each] */, int n_threads, ikv_workspace *ws);

/* Y_i = X W_i^T for `count` matrices that read the same X [n][cols]:
 * per token through ikv_matvec_group where ikv_matmul would go token by
 * token (decode), else one ikv_matmul each. */
int ikv_matmul_group(const ikv_matrix *const *w, int count, const float *x /* [n][cols] */, int n,
                     float *const *y /* [count][n][rows of each] */, int n_threads, ikv_workspace *ws);

/* Y[t][r] = W[r] . X[t] for t < n. Returns 0, or IKV_ENOMEM when the
 * workspace cannot grow. Small n falls back to ikv_matvec per token. */
int ikv_matmul(const ikv_matrix *w, const float *x /* [n][cols] */, int n,
               float *y /* [n][rows] */, int n_threads, ikv_workspace *ws);

/* Row r of W as floats (embedding lookup). */
void ikv_matrix_row(const ikv_matrix *w, int r, float *out /* [cols] */);

/* The activations a Q8_0 product computes with: x quantised per 32
 * columns and dequantised (cols a multiple of 32): the input of the
 * float path where VNNI is not compiled in, and the tests' reference. */
void ikv_q8_activations(const float *x /* [cols] */, int cols, float *out /* [cols] */);

/* Building blocks, exposed for attention and for the tests. */
float ikv_dot_f32(const float *a, const float *b, int n);
void ikv_axpy(float a, const float *x, float *y, int n); /* y += a x */
/* x[i] = e^x[i] in place, for x[i] <= 0 (softmax scores minus their
 * maximum): within 4 ulp of expf on [-87, 0], 0 below -87 and for -inf,
 * NaN for NaN. Vector code where compiled in, else expf. */
void ikv_exp_nonpositive(float *x, int n);
/* gate[i] = silu(gate[i]) * up[i] (SwiGLU), silu(g) = g / (1 + e^-g):
 * with the vector exp where compiled in (within a few ulp of expf). */
void ikv_swiglu(float *gate /* [n] */, const float *up /* [n] */, size_t n);
/* out = sum_j p[j] v[j]: the value side of attention. */
/* row[j] = (q . k[j]) * scale for j < n: the scores of one query, as n
 * calls of ikv_dot_f32 would give them (bit for bit). */
void ikv_scaled_scores(const float *q /* [d] */, const float *k /* [n][d] */, int n, int d, float scale,
                       float *row /* [n] */);
void ikv_weighted_rows(const float *p /* [n] */, const float *v /* [n][d] */, int n, int d,
                       float *out /* [d] */);

#endif
