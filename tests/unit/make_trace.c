/*
 * make_trace: writes a synthetic but self-consistent trace (see
 * trace_synth.h) for the command-line tests, without the engine.
 *
 *   make_trace OUT [--tokens T] [--prompt N] [--layers 0,2,4] [--dtype f16]
 *              [--signals default|all] [--stop K] [--poison nan|probs]
 *              [--seed N] [--chunk N] [--extra]
 *
 * --stop K closes with complete = 0 after K of T positions (an interrupt);
 * --poison writes a NaN into q, or breaks one attention row, so that
 * `infokv-inspect --check` has something to find; --extra adds a /live
 * group through the extras API.
 */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace.h"
#include "trace_synth.h"

static void usage(void)
{
    fprintf(stderr, "usage: make_trace OUT [--tokens T] [--prompt N] [--layers LIST] "
                    "[--dtype f32|f16] [--signals default|all] [--stop K] "
                    "[--poison nan|probs] [--seed N] [--chunk N] [--extra]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tokens", required_argument, NULL, 't'}, {"prompt", required_argument, NULL, 'p'},
        {"layers", required_argument, NULL, 'l'}, {"dtype", required_argument, NULL, 'd'},
        {"signals", required_argument, NULL, 's'}, {"stop", required_argument, NULL, 'x'},
        {"poison", required_argument, NULL, 'P'}, {"seed", required_argument, NULL, 'S'},
        {"chunk", required_argument, NULL, 'c'}, {"extra", no_argument, NULL, 'e'},
        {NULL, 0, NULL, 0}};
    int T = 40, n_prompt = 8, stop = -1, seed = 1, chunk = 16, extra = 0;
    int layers[64], n_layers = 0;
    const char *poison = "";
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    spec.signals = IKV_TRACE_ALL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't': T = atoi(optarg); break;
        case 'p': n_prompt = atoi(optarg); break;
        case 'l':
            for (char *p = optarg; *p && n_layers < 64;) {
                layers[n_layers++] = (int)strtol(p, &p, 10);
                if (*p == ',')
                    p++;
            }
            break;
        case 'd': spec.dtype = strcmp(optarg, "f16") == 0 ? IKV_TRACE_F16 : IKV_TRACE_F32; break;
        case 's': spec.signals = strcmp(optarg, "all") == 0 ? IKV_TRACE_ALL : IKV_TRACE_DEFAULT; break;
        case 'x': stop = atoi(optarg); break;
        case 'P': poison = optarg; break;
        case 'S': seed = atoi(optarg); break;
        case 'c': chunk = atoi(optarg); break;
        case 'e': extra = 1; break;
        default: usage();
        }
    }
    if (optind + 1 != argc || T < 1)
        usage();
    const char *out = argv[optind];

    ikv_trace_meta meta = ikv_synth_small_meta();
    meta.n_prompt = n_prompt;
    snprintf(meta.command, sizeof meta.command, "make_trace %s", out);
    if (n_layers) {
        spec.layers = layers;
        spec.n_layers = n_layers;
    }
    spec.expected_tokens = T;
    spec.chunk_tokens = chunk;
    spec.topk = 10;
    spec.entropy_k = 20;

    ikv_synth syn;
    if (ikv_synth_init(&syn, &meta, n_layers ? layers : NULL, n_layers, T, spec.topk,
                       spec.entropy_k, (uint32_t)seed, 1) != 0) {
        fprintf(stderr, "make_trace: out of memory\n");
        return 1;
    }
    char err[1024];
    ikv_trace_writer *w;
    if (ikv_trace_writer_create(&w, out, &meta, &spec, err, sizeof err) != IKV_TRACE_OK) {
        fprintf(stderr, "make_trace: %s\n", err);
        return 1;
    }
    int n = stop >= 0 && stop < T ? stop : T;
    for (int t = 0; t < n; t++) {
        ikv_trace_row row;
        ikv_synth_row(&syn, t, &row);
        if (t == n / 2 && strcmp(poison, "nan") == 0)
            syn.q[(size_t)t * syn.n_slots * meta.n_heads * meta.head_dim + 3] = NAN;
        if (t == n - 1 && t > 0 && strcmp(poison, "probs") == 0)
            syn.probs[0] += 0.25f; /* row of slot 0, head 0 no longer sums to 1 */
        if (ikv_trace_write_position(w, &row) != IKV_TRACE_OK) {
            fprintf(stderr, "make_trace: %s\n", ikv_trace_writer_error(w));
            ikv_trace_writer_abort(w);
            return 1;
        }
    }
    if (extra) {
        float *kl = calloc((size_t)n + 1, sizeof *kl);
        int64_t dims[1] = {n};
        for (int t = 0; t < n; t++)
            kl[t] = 0.01f * (float)t;
        if (ikv_trace_write_extra(w, "live/kl", IKV_TRACE_TYPE_F32, 1, dims, kl) != IKV_TRACE_OK ||
            ikv_trace_writer_attr_string(w, "live", "policy", "h2o") != IKV_TRACE_OK) {
            fprintf(stderr, "make_trace: %s\n", ikv_trace_writer_error(w));
            free(kl);
            ikv_trace_writer_abort(w);
            return 1;
        }
        free(kl);
    }
    if (ikv_trace_writer_close(w, n == T, err, sizeof err) != IKV_TRACE_OK) {
        fprintf(stderr, "make_trace: %s\n", err);
        return 1;
    }
    ikv_synth_free(&syn);
    return 0;
}
