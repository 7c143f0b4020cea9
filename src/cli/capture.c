/*
 * infokv-capture: runs a model on a prompt.
 *
 * Generate mode (this file so far) works like llama2.c's run: the prompt
 * and the generated text stream to stdout, speeds go to stderr. `-n` counts
 * positions as run.c does: the prompt's tokens (with BOS) plus the
 * generated ones, so -n 64 runs 64 forward positions.
 *
 * The program is an options struct, a parser, and a run function per
 * mode, so that trace recording (-o, --save, --policy, ...) can add its
 * options and its own run function beside generate.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/common.h"
#include "model/kernels.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/session.h"
#include "model/tokenizer.h"

typedef struct capture_options {
    const char *model_path;
    const char *tokenizer_path; /* NULL: beside the model (llama2.c) */
    const char *prompt;
    int steps;                  /* total positions, prompt included; 0: the model's context */
    float temperature;
    float top_p;
    uint64_t seed;
    int seed_given;
    int threads;                /* 0: OpenMP's default */
    int quiet;
} capture_options;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: %s -m MODEL [options]\n"
            "Run a llama2.c checkpoint or a GGUF model on a prompt and print the text.\n"
            "\n"
            "  -m, --model FILE       model: GGUF (llama, mistral, qwen2; F32/F16/BF16/Q8_0)\n"
            "                         or a llama2.c checkpoint\n"
            "  -z, --tokenizer FILE   llama2.c tokenizer (default: tokenizer.bin beside the model)\n"
            "  -p, --prompt TEXT      prompt (default: empty, i.e. only BOS)\n"
            "  -n, --steps N          positions to run, prompt included, like llama2.c's run\n"
            "                         (default 256; 0 = the model's context length)\n"
            "  -t, --temperature T    0 = greedy (default 1.0)\n"
            "      --top-p P          nucleus sampling mass in (0, 1); 0 or 1 = off (default 0.9)\n"
            "  -s, --seed N           sampling seed (default: from the clock, shown on stderr)\n"
            "      --threads N        compute threads (default: all available)\n"
            "  -q, --quiet            no speeds or notes on stderr\n"
            "  -h, --help             this help\n"
            "  -V, --version          version\n"
            "\n"
            "Generation stops at EOS (or BOS, which llama2.c models emit between stories)\n"
            "or after -n positions. Exit status: 0 ok, 1 runtime failure, 2 bad flags or model.\n",
            ikv_cli_program());
}

static void parse_options(int argc, char **argv, capture_options *o)
{
    enum { OPT_TOP_P = 256, OPT_THREADS };
    static const struct option long_options[] = {
        {"model", required_argument, NULL, 'm'},
        {"tokenizer", required_argument, NULL, 'z'},
        {"prompt", required_argument, NULL, 'p'},
        {"steps", required_argument, NULL, 'n'},
        {"temperature", required_argument, NULL, 't'},
        {"top-p", required_argument, NULL, OPT_TOP_P},
        {"seed", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->prompt = "";
    o->steps = 256;
    o->temperature = 1.0f;
    o->top_p = 0.9f;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:z:p:n:t:s:qhV", long_options, NULL)) != -1) {
        switch (c) {
        case 'm': o->model_path = optarg; break;
        case 'z': o->tokenizer_path = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'n': o->steps = (int)ikv_parse_long_option("-n", optarg, 0, 1L << 30); break;
        case 't': o->temperature = (float)ikv_parse_double_option("-t", optarg, 0.0, 1e6); break;
        case OPT_TOP_P: o->top_p = (float)ikv_parse_double_option("--top-p", optarg, 0.0, 1.0); break;
        case 's': {
            char *end;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (!*optarg || *end || optarg[0] == '-')
                ikv_die(IKV_EXIT_USAGE, "-s: '%s' is not a non-negative integer", optarg);
            o->seed = v;
            o->seed_given = 1;
            break;
        }
        case OPT_THREADS: o->threads = (int)ikv_parse_long_option("--threads", optarg, 1, 1024); break;
        case 'q': o->quiet = 1; break;
        case 'h': usage(stdout); exit(IKV_EXIT_OK);
        case 'V': printf("infokv-capture %s\n", PACKAGE_VERSION); exit(IKV_EXIT_OK);
        case ':':
            ikv_die(IKV_EXIT_USAGE, "option %s needs a value (see --help)", argv[optind - 1]);
        default:
            if (optopt)
                ikv_die(IKV_EXIT_USAGE, "unknown option -%c (see --help)", optopt);
            ikv_die(IKV_EXIT_USAGE, "unknown option %s (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        ikv_die(IKV_EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[optind]);
    if (!o->model_path)
        ikv_die(IKV_EXIT_USAGE, "no model given: -m MODEL (see --help)");
    if (!o->seed_given)
        o->seed = (uint64_t)time(NULL);
}

/* Writes a token's text, leaving out lone control bytes (as run.c does)
 * so that a stray byte token cannot garble the terminal. */
static void print_piece(const ikv_tokenizer *tok, int32_t prev, int32_t id, char *buf, size_t buflen)
{
    int n = ikv_tokenizer_decode(tok, prev, id, buf, buflen);
    if (n <= 0)
        return;
    if (n == 1) {
        unsigned char ch = (unsigned char)buf[0];
        if ((ch < 0x20 && ch != '\n' && ch != '\t' && ch != '\r') || ch == 0x7f)
            return;
    }
    fwrite(buf, 1, (size_t)n, stdout);
    fflush(stdout);
}

static int run_generate(const capture_options *o)
{
    char err[512];
    ikv_model *model;
    int rc = ikv_model_load(&model, o->model_path, o->tokenizer_path, err, sizeof err);
    if (rc == IKV_ENOMEM || rc == IKV_EIO)
        ikv_die(rc == IKV_EIO ? IKV_EXIT_USAGE : IKV_EXIT_RUNTIME, "%s", err);
    if (rc)
        ikv_die(IKV_EXIT_USAGE, "%s", err);
    const ikv_model_details *info = ikv_model_info(model);
    const ikv_tokenizer *tok = ikv_model_tokenizer(model);
    if (!tok)
        ikv_die(IKV_EXIT_USAGE, "%s: the model has no tokenizer (give one with -z)", o->model_path);

    int steps = o->steps;
    if (steps <= 0 || steps > info->max_seq_len)
        steps = info->max_seq_len;

    size_t prompt_len = strlen(o->prompt);
    int max_tokens = (int)(prompt_len < (1u << 28) ? prompt_len : (1u << 28)) + 8;
    int32_t *prompt = malloc((size_t)max_tokens * sizeof *prompt);
    int n_prompt = 0;
    if (!prompt)
        ikv_die(IKV_EXIT_RUNTIME, "out of memory");
    rc = ikv_tokenizer_encode(tok, o->prompt, prompt_len, -1, prompt, max_tokens, &n_prompt);
    if (rc == 0 && n_prompt > max_tokens)
        rc = IKV_ECAPACITY;
    if (rc)
        ikv_die(IKV_EXIT_RUNTIME, "cannot encode the prompt: %s", ikv_model_strerror(rc));
    if (n_prompt == 0)
        ikv_die(IKV_EXIT_USAGE, "the prompt is empty and the tokenizer adds no BOS: give -p TEXT");

    ikv_session *session;
    if (ikv_session_create(&session, model, steps, o->threads, err, sizeof err) != IKV_OK)
        ikv_die(IKV_EXIT_RUNTIME, "%s", err);
    ikv_sampler_params sp = ikv_sampler_default_params();
    sp.temperature = o->temperature;
    sp.top_p = o->top_p;
    sp.seed = o->seed;
    ikv_sampler *sampler;
    if (ikv_sampler_create(&sampler, info->vocab_size, &sp, err, sizeof err) != IKV_OK)
        ikv_die(IKV_EXIT_USAGE, "%s", err);
    if (!o->seed_given && o->temperature > 0.0f)
        ikv_note(o->quiet, "seed %llu", (unsigned long long)o->seed);
    ikv_cli_catch_stop_signals();

    size_t piece_cap = (size_t)ikv_tokenizer_max_token_bytes(tok) + 1;
    char *piece = malloc(piece_cap);
    if (!piece)
        ikv_die(IKV_EXIT_RUNTIME, "out of memory");

    /* Prefill the prompt (cut to `steps` positions, as run.c would). */
    int n_feed = n_prompt < steps ? n_prompt : steps;
    double t0 = ikv_now();
    if (ikv_session_prefill(session, prompt, n_feed) != IKV_OK)
        ikv_die(IKV_EXIT_RUNTIME, "prefill: %s", ikv_session_error(session));
    double t_prefill = ikv_now() - t0;
    for (int i = 1; i < n_feed; i++)
        print_piece(tok, prompt[i - 1], prompt[i], piece, piece_cap);

    int n_decode = 0;
    double t_decode = 0.0;
    if (n_prompt > n_feed) {
        /* the prompt alone fills every position */
        print_piece(tok, prompt[n_feed - 1], prompt[n_feed], piece, piece_cap);
    } else {
        int32_t token = prompt[n_feed - 1];
        int pos = n_feed;
        double t1 = ikv_now();
        for (;;) {
            int32_t next = ikv_sampler_sample(sampler, ikv_session_logits(session));
            if (next == info->eos_id || next == info->bos_id)
                break;
            print_piece(tok, token, next, piece, piece_cap);
            token = next;
            if (pos >= steps || ikv_cli_stop_requested())
                break;
            if (ikv_session_decode(session, token) != IKV_OK)
                ikv_die(IKV_EXIT_RUNTIME, "decode: %s", ikv_session_error(session));
            n_decode++;
            pos++;
        }
        t_decode = ikv_now() - t1;
    }
    printf("\n");
    fflush(stdout);
    ikv_note(o->quiet, "prefill: %d tokens in %.3f s (%.1f tok/s); decode: %d tokens in %.3f s "
             "(%.1f tok/s); %d threads, %s kernels",
             n_feed, t_prefill, t_prefill > 0 ? n_feed / t_prefill : 0.0, n_decode, t_decode,
             t_decode > 0 && n_decode ? n_decode / t_decode : 0.0, ikv_session_threads(session),
             ikv_kernels_isa());
    int stopped = ikv_cli_stop_requested();
    free(piece);
    free(prompt);
    ikv_sampler_free(sampler);
    ikv_session_free(session);
    ikv_model_free(model);
    return stopped ? IKV_EXIT_RUNTIME : IKV_EXIT_OK;
}

int main(int argc, char **argv)
{
    capture_options options;
    ikv_cli_init(argv[0]);
    parse_options(argc, argv, &options);
    return run_generate(&options);
}
