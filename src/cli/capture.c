/*
 * infokv-capture: runs a model on a prompt; prints the text like llama2.c's
 * run, and with -o records an HDF5 trace of what eviction policies need.
 *
 * `-n` counts positions as run.c does: the prompt's tokens (with BOS) plus
 * the generated ones, so -n 64 runs 64 forward positions; a trace holds
 * exactly the positions that ran.
 *
 * Modes: generate (no -o), trace (-o). The options struct, the parser and
 * one run function per mode keep them apart.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "capture/recorder.h"
#include "cli/capture.h"
#include "cli/common.h"
#include "cli/prompt.h"
#include "model/kernels.h"
#include "model/model.h"
#include "model/sampler.h"
#include "model/session.h"
#include "model/tokenizer.h"
#include "model/wtype.h"
#include "trace/trace.h"

#define PROMPT_FILE_LIMIT (64u << 20)
#define DEFAULT_ATTN_LIMIT_MB 256.0
#define PREFILL_CHUNK 64


static void usage(FILE *out)
{
    fprintf(out,
            "Usage: %s -m MODEL [options]\n"
            "Run a llama2.c checkpoint or a GGUF model on a prompt and print the text;\n"
            "with -o, record an HDF5 trace (see traces/SCHEMA.md).\n"
            "\n"
            "Model and prompt:\n"
            "  -m, --model FILE       model: GGUF (llama, mistral, qwen2; F32/F16/BF16/Q8_0)\n"
            "                         or a llama2.c checkpoint; synthetic:SHAPE[:TYPE] builds\n"
            "                         random weights of a shape (tiny, llama-3.2-1b, llama-3.1-8b;\n"
            "                         f32, f16, bf16, q8_0) with no tokenizer: each prompt byte\n"
            "                         is one token and tokens print as <id>\n"
            "  -z, --tokenizer FILE   llama2.c tokenizer (default: tokenizer.bin beside the model)\n"
            "  -p, --prompt TEXT      prompt (default: empty, i.e. only BOS)\n"
            "  -f, --prompt-file FILE read the prompt from a text file\n"
            "      --jsonl FILE       read the prompt from a JSON Lines file (GSM8K, MATH500)...\n"
            "      --field KEY        ...from this string field (default: question)...\n"
            "      --index N          ...of record N, counting from 0 (default 0)\n"
            "Generation:\n"
            "  -n, --steps N          positions to run, prompt included, like llama2.c's run\n"
            "                         (default 256; 0 = the model's context length)\n"
            "  -t, --temperature T    0 = greedy (default 1.0)\n"
            "      --top-p P          nucleus sampling mass in (0, 1); 0 or 1 = off (default 0.9)\n"
            "  -s, --seed N           sampling seed (default: from the clock, shown on stderr)\n"
            "      --threads N        compute threads (default: all available)\n"
            "Trace:\n"
            "  -o, --output FILE      write an HDF5 trace of the run\n"
            "      --save LIST        signals: default (= tokens,logits,evolution,qkv), or any of\n"
            "                         tokens logits evolution qkv attn attn-stats states\n"
            "                         logits-full, or all\n"
            "      --dtype f32|f16    storage of q/k/v and the other big tensors (default f32)\n"
            "      --deflate N        zlib level 0-9 after byte shuffle; 0 = none, fastest\n"
            "                         (default 1)\n"
            "      --layers LIST      record these layers only, e.g. 0,2,4 (default: all)\n"
            "      --topk K           top-K log-probabilities kept per position (default 20)\n"
            "      --max-attn MB      refuse dense attention maps larger than this (default %.0f)\n"
            "      --force            write them anyway\n"
            "      --fsync            sync the trace to disk before it takes its name, so\n"
            "                         that it survives a crash of the machine too (default\n"
            "                         off: it still appears whole or not at all)\n"
            "Live eviction (closed loop against the full cache, teacher forced):\n"
            "      --policy LIST      run these policies live, e.g. h2o,snapkv,infokv\n"
            "      --budget LIST      their budgets: counts or fractions (default 25%%)\n"
            "      --param SPEC       [policy.]key=value[,value...] (repeatable)\n"
            "      --scenario LIST    prefill, decode or prefill,decode (default prefill)\n"
            "Exact Forward Influence:\n"
            "      --influence N      probe N tokens per set: rerun the later positions with\n"
            "                         each removed from every layer's cache and record the KL\n"
            "      --influence-set S  attention, entropy, random or all (default all)\n"
            "      --influence-seed N seed of the random set (default 1)\n"
            "  -q, --quiet            no progress, speeds or notes on stderr\n"
            "  -h, --help             this help\n"
            "  -V, --version          version\n"
            "\n"
            "Generation stops at EOS (or BOS, which llama2.c models emit between stories)\n"
            "or after -n positions. With -o, live runs go to /live/* and probes to\n"
            "/influence/* of the trace. On SIGINT or SIGTERM a trace is closed at the next token,\n"
            "readable, with complete=0. Exit status: 0 ok, 1 runtime failure or interrupted,\n"
            "2 bad flags or input.\n",
            ikv_cli_program(), DEFAULT_ATTN_LIMIT_MB);
}

static unsigned parse_save(const char *list)
{
    static const struct {
        const char *name;
        unsigned bits;
    } names[] = {
        {"default", IKV_TRACE_TOKENS | IKV_TRACE_LOGITS_SUMMARY | IKV_TRACE_EVOLUTION | IKV_TRACE_QKV},
        {"all", IKV_TRACE_ALL},
        {"tokens", IKV_TRACE_TOKENS},
        {"logits", IKV_TRACE_LOGITS_SUMMARY},
        {"evolution", IKV_TRACE_EVOLUTION},
        {"qkv", IKV_TRACE_QKV},
        {"attn", IKV_TRACE_ATTN_PROBS},
        {"attn-stats", IKV_TRACE_ATTN_STATS},
        {"states", IKV_TRACE_STATES},
        {"logits-full", IKV_TRACE_LOGITS_FULL},
    };
    unsigned bits = IKV_TRACE_TOKENS;
    const char *s = list;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        int found = 0;
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            if (strlen(names[i].name) == len && strncmp(names[i].name, s, len) == 0) {
                bits |= names[i].bits;
                found = 1;
            }
        }
        if (!found && len > 0)
            ikv_die(IKV_EXIT_USAGE,
                    "--save: unknown signal '%.*s' (known: default, all, tokens, logits, evolution, qkv, "
                    "attn, attn-stats, states, logits-full)",
                    (int)len, s);
        if (!comma)
            break;
        s = comma + 1;
    }
    return bits;
}

static unsigned parse_sets(const char *list)
{
    static const char *const names[3] = {"attention", "entropy", "random"};
    unsigned bits = 0;
    const char *s = list;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        int found = len == 3 && strncmp(s, "all", 3) == 0;
        if (found)
            bits |= 7u;
        for (int i = 0; i < 3; i++)
            if (strlen(names[i]) == len && strncmp(names[i], s, len) == 0) {
                bits |= 1u << i;
                found = 1;
            }
        if (!found && len > 0)
            ikv_die(IKV_EXIT_USAGE, "--influence-set: '%.*s' is not attention, entropy, random or all", (int)len, s);
        if (!comma)
            break;
        s = comma + 1;
    }
    if (!bits)
        ikv_die(IKV_EXIT_USAGE, "--influence-set: no set given");
    return bits;
}

static void record_command(int argc, char **argv, capture_options *o)
{
    size_t used = 0;
    for (int i = 0; i < argc && used + 2 < sizeof o->command; i++) {
        int n = snprintf(o->command + used, sizeof o->command - used, "%s%s", i ? " " : "", argv[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (used >= sizeof o->command)
        o->command[sizeof o->command - 1] = '\0';
}

static void parse_options(int argc, char **argv, capture_options *o)
{
    enum { OPT_TOP_P = 256, OPT_THREADS, OPT_JSONL, OPT_FIELD, OPT_INDEX, OPT_SAVE, OPT_DTYPE, OPT_DEFLATE,
           OPT_LAYERS, OPT_TOPK, OPT_MAX_ATTN, OPT_FORCE, OPT_FSYNC, OPT_POLICY, OPT_BUDGET, OPT_PARAM,
           OPT_SCENARIO, OPT_INFLUENCE, OPT_INFLUENCE_SET, OPT_INFLUENCE_SEED };
    static const struct option long_options[] = {
        {"model", required_argument, NULL, 'm'},
        {"tokenizer", required_argument, NULL, 'z'},
        {"prompt", required_argument, NULL, 'p'},
        {"prompt-file", required_argument, NULL, 'f'},
        {"jsonl", required_argument, NULL, OPT_JSONL},
        {"field", required_argument, NULL, OPT_FIELD},
        {"index", required_argument, NULL, OPT_INDEX},
        {"steps", required_argument, NULL, 'n'},
        {"temperature", required_argument, NULL, 't'},
        {"top-p", required_argument, NULL, OPT_TOP_P},
        {"seed", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"output", required_argument, NULL, 'o'},
        {"save", required_argument, NULL, OPT_SAVE},
        {"dtype", required_argument, NULL, OPT_DTYPE},
        {"deflate", required_argument, NULL, OPT_DEFLATE},
        {"layers", required_argument, NULL, OPT_LAYERS},
        {"topk", required_argument, NULL, OPT_TOPK},
        {"max-attn", required_argument, NULL, OPT_MAX_ATTN},
        {"force", no_argument, NULL, OPT_FORCE},
        {"fsync", no_argument, NULL, OPT_FSYNC},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"budget", required_argument, NULL, OPT_BUDGET},
        {"param", required_argument, NULL, OPT_PARAM},
        {"scenario", required_argument, NULL, OPT_SCENARIO},
        {"influence", required_argument, NULL, OPT_INFLUENCE},
        {"influence-set", required_argument, NULL, OPT_INFLUENCE_SET},
        {"influence-seed", required_argument, NULL, OPT_INFLUENCE_SEED},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->steps = 256;
    o->temperature = 1.0f;
    o->top_p = 0.9f;
    o->field = "question";
    o->signals = parse_save("default");
    o->topk = 20;
    o->deflate_level = ikv_trace_writer_default_spec().deflate_level;
    o->attn_limit_mb = DEFAULT_ATTN_LIMIT_MB;
    o->influence_sets = 7u;
    o->influence_seed = 1;
    record_command(argc, argv, o);
    opterr = 0;
    int c;
    int sources = 0;
    while ((c = getopt_long(argc, argv, ":m:z:p:f:n:t:s:o:qhV", long_options, NULL)) != -1) {
        switch (c) {
        case 'm': o->model_path = optarg; break;
        case 'z': o->tokenizer_path = optarg; break;
        case 'p': o->prompt = optarg; sources++; break;
        case 'f': o->prompt_file = optarg; sources++; break;
        case OPT_JSONL: o->jsonl = optarg; sources++; break;
        case OPT_FIELD: o->field = optarg; break;
        case OPT_INDEX: o->index = ikv_parse_long_option("--index", optarg, 0, 1L << 40); break;
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
        case 'o': o->out_path = optarg; break;
        case OPT_SAVE: o->signals = parse_save(optarg); break;
        case OPT_DTYPE:
            if (strcmp(optarg, "f32") == 0)
                o->dtype = IKV_TRACE_F32;
            else if (strcmp(optarg, "f16") == 0)
                o->dtype = IKV_TRACE_F16;
            else
                ikv_die(IKV_EXIT_USAGE, "--dtype: '%s' is not f32 or f16", optarg);
            break;
        case OPT_DEFLATE: o->deflate_level = (int)ikv_parse_long_option("--deflate", optarg, 0, 9); break;
        case OPT_LAYERS:
            o->n_layers = ikv_parse_index_list("--layers", optarg, 100000, o->layers,
                                               (int)(sizeof o->layers / sizeof *o->layers));
            break;
        case OPT_TOPK: o->topk = (int)ikv_parse_long_option("--topk", optarg, 1, 1000); break;
        case OPT_MAX_ATTN: o->attn_limit_mb = ikv_parse_double_option("--max-attn", optarg, 0.0, 1e9); break;
        case OPT_FORCE: o->force = 1; break;
        case OPT_FSYNC: o->durable = 1; break;
        case OPT_POLICY: o->policies = optarg; break;
        case OPT_BUDGET: o->budgets = optarg; break;
        case OPT_SCENARIO: o->scenarios = strcmp(optarg, "both") == 0 ? "prefill,decode" : optarg; break;
        case OPT_PARAM: {
            char perr[256];
            if (o->n_sweeps == (int)(sizeof o->sweeps / sizeof *o->sweeps))
                ikv_die(IKV_EXIT_USAGE, "--param: at most 16");
            if (ikv_sweep_parse(optarg, &o->sweeps[o->n_sweeps], perr, sizeof perr) != 0)
                ikv_die(IKV_EXIT_USAGE, "%s", perr);
            o->n_sweeps++;
            break;
        }
        case OPT_INFLUENCE: o->influence = (int)ikv_parse_long_option("--influence", optarg, 1, 100000); break;
        case OPT_INFLUENCE_SET: o->influence_sets = parse_sets(optarg); break;
        case OPT_INFLUENCE_SEED:
            o->influence_seed = (uint64_t)ikv_parse_long_option("--influence-seed", optarg, 0, 0x7fffffffL);
            break;
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
    if (sources > 1)
        ikv_die(IKV_EXIT_USAGE, "give the prompt once: -p, -f or --jsonl");
    if ((o->budgets || o->scenarios || o->n_sweeps) && !o->policies)
        ikv_die(IKV_EXIT_USAGE, "--budget, --param and --scenario go with --policy");
    if (!o->seed_given)
        o->seed = (uint64_t)time(NULL);
}

/* ---- what every mode shares: model, prompt, session, sampler ---- */

static void load_prompt_text(const capture_options *o, char **text)
{
    char err[512];
    if (o->prompt_file) {
        *text = ikv_read_text_file(o->prompt_file, PROMPT_FILE_LIMIT, err, sizeof err);
        if (!*text)
            ikv_die(IKV_EXIT_USAGE, "%s", err);
    } else if (o->jsonl) {
        *text = ikv_jsonl_field(o->jsonl, o->index, o->field, err, sizeof err);
        if (!*text)
            ikv_die(IKV_EXIT_USAGE, "%s", err);
    } else {
        *text = strdup(o->prompt ? o->prompt : "");
        if (!*text)
            ikv_die(IKV_EXIT_RUNTIME, "out of memory");
    }
}

/* "SHAPE[:TYPE]" -> a model with deterministic random weights (seed 1). */
static int load_synthetic(const char *spec, ikv_model **out, char *err, size_t errlen)
{
    char shape_name[64];
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len == 0 || len >= sizeof shape_name) {
        snprintf(err, errlen, "synthetic:%s: give a shape: tiny, llama-3.2-1b or llama-3.1-8b", spec);
        return IKV_EINVAL;
    }
    memcpy(shape_name, spec, len);
    shape_name[len] = '\0';
    ikv_model_shape shape;
    if (ikv_model_shape_preset(shape_name, &shape) != IKV_OK) {
        snprintf(err, errlen, "synthetic:%s: unknown shape (tiny, llama-3.2-1b, llama-3.1-8b)", shape_name);
        return IKV_EINVAL;
    }
    ikv_wtype type = IKV_WTYPE_F32;
    if (colon) {
        static const char *const names[] = {"f32", "f16", "bf16", "q8_0"};
        static const ikv_wtype types[] = {IKV_WTYPE_F32, IKV_WTYPE_F16, IKV_WTYPE_BF16, IKV_WTYPE_Q8_0};
        int found = 0;
        for (int i = 0; i < 4; i++)
            if (strcmp(colon + 1, names[i]) == 0) {
                type = types[i];
                found = 1;
            }
        if (!found) {
            snprintf(err, errlen, "synthetic:%s: unknown weight type '%s' (f32, f16, bf16, q8_0)", spec, colon + 1);
            return IKV_EINVAL;
        }
    }
    return ikv_model_synthetic(out, &shape, type, 1, err, errlen);
}

static void open_run(const capture_options *o, run_context *rc)
{
    char err[512];
    memset(rc, 0, sizeof *rc);
    int status = strncmp(o->model_path, "synthetic:", 10) == 0
                     ? load_synthetic(o->model_path + 10, &rc->model, err, sizeof err)
                     : ikv_model_load(&rc->model, o->model_path, o->tokenizer_path, err, sizeof err);
    if (status)
        ikv_die(status == IKV_ENOMEM ? IKV_EXIT_RUNTIME : IKV_EXIT_USAGE, "%s", err);
    rc->info = ikv_model_info(rc->model);
    rc->tok = ikv_model_tokenizer(rc->model);
    if (!rc->tok && strncmp(o->model_path, "synthetic:", 10) != 0)
        ikv_die(IKV_EXIT_USAGE, "%s: the model has no tokenizer (give one with -z)", o->model_path);
    rc->steps = o->steps;
    if (rc->steps <= 0 || rc->steps > rc->info->max_seq_len)
        rc->steps = rc->info->max_seq_len;

    char *text;
    load_prompt_text(o, &text);
    size_t len = strlen(text);
    int max_tokens = (int)(len < (1u << 28) ? len : (1u << 28)) + 8;
    int32_t *prompt = malloc((size_t)max_tokens * sizeof *prompt);
    if (!prompt)
        ikv_die(IKV_EXIT_RUNTIME, "out of memory");
    int n = 0;
    if (rc->tok) {
        status = ikv_tokenizer_encode(rc->tok, text, len, -1, prompt, max_tokens, &n);
    } else { /* synthetic: a token per byte, and one to start with */
        prompt[n++] = 1 % rc->info->vocab_size;
        for (size_t i = 0; i < len; i++)
            prompt[n++] = (int32_t)((unsigned char)text[i] % (unsigned)rc->info->vocab_size);
    }
    if (status == 0 && n > max_tokens)
        status = IKV_ECAPACITY;
    if (status)
        ikv_die(IKV_EXIT_RUNTIME, "cannot encode the prompt: %s", ikv_model_strerror(status));
    free(text);
    if (n == 0)
        ikv_die(IKV_EXIT_USAGE, "the prompt is empty and the tokenizer adds no BOS: give -p TEXT");
    rc->n_prompt_all = n;
    rc->n_prompt = n < rc->steps ? n : rc->steps;
    rc->tokens = malloc((size_t)(rc->steps + 1) * sizeof *rc->tokens);
    if (!rc->tokens)
        ikv_die(IKV_EXIT_RUNTIME, "out of memory");
    memcpy(rc->tokens, prompt, (size_t)rc->n_prompt * sizeof *prompt);
    if (n > rc->n_prompt)
        rc->tokens[rc->n_prompt] = prompt[rc->n_prompt]; /* printed, never run */
    free(prompt);

    ikv_sampler_params sp = ikv_sampler_default_params();
    sp.temperature = o->temperature;
    sp.top_p = o->top_p;
    sp.seed = o->seed;
    if (ikv_sampler_create(&rc->sampler, rc->info->vocab_size, &sp, err, sizeof err) != IKV_OK)
        ikv_die(IKV_EXIT_USAGE, "%s", err);
    if (!o->seed_given && o->temperature > 0.0f)
        ikv_note(o->quiet, "seed %llu", (unsigned long long)o->seed);
    rc->piece_cap = rc->tok ? (size_t)ikv_tokenizer_max_token_bytes(rc->tok) + 1 : 32;
    rc->piece = malloc(rc->piece_cap);
    if (!rc->piece)
        ikv_die(IKV_EXIT_RUNTIME, "out of memory");
}

static void close_run(run_context *rc)
{
    free(rc->piece);
    free(rc->tokens);
    ikv_sampler_free(rc->sampler);
    ikv_model_free(rc->model);
}

/* Writes a token's text, leaving out lone control bytes (as run.c does)
 * so that a stray byte token cannot garble the terminal. */
void capture_print_piece(run_context *rc, int32_t prev, int32_t id)
{
    if (!rc->tok) {
        printf("<%d>", (int)id);
        fflush(stdout);
        return;
    }
    int n = ikv_tokenizer_decode(rc->tok, prev, id, rc->piece, rc->piece_cap);
    if (n <= 0)
        return;
    if (n == 1) {
        unsigned char ch = (unsigned char)rc->piece[0];
        if ((ch < 0x20 && ch != '\n' && ch != '\t' && ch != '\r') || ch == 0x7f)
            return;
    }
    fwrite(rc->piece, 1, (size_t)n, stdout);
    fflush(stdout);
}


/* The generation loop shared by every mode: prefill in chunks, then
 * sample and decode until EOS, -n positions or a stop signal. With
 * `stream` the text goes out as it is made; otherwise (a progress bar is
 * on the terminal) print_text() writes it at the end. */
static int run_sequence(run_context *rc, ikv_session *session, int chunk, int stream, after_fn after,
                        void *user, ikv_progress *progress, run_stats *st)
{
    memset(st, 0, sizeof *st);
    st->last = -1;
    double t0 = ikv_now();
    for (int done = 0; done < rc->n_prompt;) {
        int n = rc->n_prompt - done < chunk ? rc->n_prompt - done : chunk;
        if (ikv_session_prefill(session, rc->tokens + done, n) != IKV_OK)
            ikv_die(IKV_EXIT_RUNTIME, "prefill: %s", ikv_session_error(session));
        done += n;
        st->n_run = done;
        if (after && after(user, done) != 0)
            return -1;
        if (progress)
            ikv_progress_update(progress, done);
        if (ikv_cli_stop_requested() && done < rc->n_prompt) {
            st->stopped = 1;
            return 0;
        }
    }
    st->t_prefill = ikv_now() - t0;
    for (int i = 1; stream && i < rc->n_prompt; i++)
        capture_print_piece(rc, rc->tokens[i - 1], rc->tokens[i]);
    int pos = rc->n_prompt;
    if (rc->n_prompt_all > rc->n_prompt) {
        st->last = rc->tokens[pos]; /* the prompt alone fills every position */
        if (stream)
            capture_print_piece(rc, rc->tokens[pos - 1], st->last);
        return 0;
    }
    double t1 = ikv_now();
    int32_t token = rc->tokens[pos - 1];
    for (;;) {
        int32_t next = ikv_sampler_sample(rc->sampler, ikv_session_logits(session));
        if (next == rc->info->eos_id || next == rc->info->bos_id)
            break;
        if (stream)
            capture_print_piece(rc, token, next);
        token = next;
        if (pos >= rc->steps) {
            st->last = token;
            break;
        }
        if (ikv_cli_stop_requested()) {
            st->last = token;
            st->stopped = 1;
            break;
        }
        rc->tokens[pos] = token;
        if (ikv_session_decode(session, token) != IKV_OK)
            ikv_die(IKV_EXIT_RUNTIME, "decode: %s", ikv_session_error(session));
        pos++;
        st->n_decode++;
        st->n_run = pos;
        if (after && after(user, pos) != 0)
            return -1;
        if (progress)
            ikv_progress_update(progress, pos);
    }
    st->t_decode = ikv_now() - t1;
    return 0;
}

/* The text of a finished run, for modes that did not stream it. */
static void print_text(run_context *rc, const run_stats *st)
{
    for (int i = 1; i < st->n_run; i++)
        capture_print_piece(rc, rc->tokens[i - 1], rc->tokens[i]);
    if (st->last >= 0 && st->n_run > 0)
        capture_print_piece(rc, rc->tokens[st->n_run - 1], st->last);
}

static void report_speed(const capture_options *o, const run_stats *st, const run_context *rc,
                         const ikv_session *session)
{
    ikv_note(o->quiet, "prefill: %d tokens in %.3f s (%.1f tok/s); decode: %d tokens in %.3f s "
             "(%.1f tok/s); %d threads, %s kernels",
             rc->n_prompt, st->t_prefill, st->t_prefill > 0 ? rc->n_prompt / st->t_prefill : 0.0,
             st->n_decode, st->t_decode, st->t_decode > 0 && st->n_decode ? st->n_decode / st->t_decode : 0.0,
             ikv_session_threads(session), ikv_kernels_isa());
}

static int run_generate(const capture_options *o)
{
    char err[512];
    run_context rc;
    open_run(o, &rc);
    ikv_session *session;
    if (ikv_session_create(&session, rc.model, rc.steps, o->threads, err, sizeof err) != IKV_OK)
        ikv_die(IKV_EXIT_RUNTIME, "%s", err);
    ikv_cli_catch_stop_signals();
    run_stats st;
    run_sequence(&rc, session, rc.n_prompt, 1, NULL, NULL, NULL, &st);
    printf("\n");
    fflush(stdout);
    report_speed(o, &st, &rc, session);
    ikv_session_free(session);
    close_run(&rc);
    if (st.stopped)
        ikv_die(IKV_EXIT_RUNTIME, "interrupted");
    return IKV_EXIT_OK;
}

/* ---- capture mode: a trace, live runs, influence probes ---- */

typedef struct capture_state {
    ikv_recorder *recorder; /* NULL without -o */
    live_set *live;         /* NULL without --policy */
    ikv_session *full;
    run_context *rc;
    int done;               /* positions handed on so far */
    char err[512];
} capture_state;

/* Tests interrupt a capture at an exact point: with INFOKV_INTERRUPT_AFTER=N
 * the program raises SIGINT on itself once N positions have run, which
 * takes the same path as a user's Ctrl-C. */
static void maybe_interrupt(int n_past)
{
    static long after = -2;
    if (after == -2) {
        const char *v = getenv("INFOKV_INTERRUPT_AFTER");
        after = v && *v ? strtol(v, NULL, 10) : -1;
    }
    if (after >= 0 && n_past >= after) {
        after = -1;
        raise(SIGINT);
    }
}

static int after_positions(void *user, int n_past)
{
    capture_state *cs = user;
    maybe_interrupt(n_past);
    if (cs->recorder &&
        ikv_recorder_write(cs->recorder, cs->rc->tokens, n_past, cs->err, sizeof cs->err) != IKV_OK)
        return -1;
    if (live_set_advance(cs->live, cs->full, cs->rc->tokens, cs->done, n_past, cs->err, sizeof cs->err) != 0)
        return -1;
    cs->done = n_past;
    return 0;
}

static void fill_meta(const capture_options *o, const run_context *rc, ikv_model *model, ikv_trace_meta *meta)
{
    ikv_recorder_meta(rc->info, rc->n_prompt, meta);
    snprintf(meta->producer, sizeof meta->producer, "infokv-capture %s", PACKAGE_VERSION);
    snprintf(meta->model_sha256, sizeof meta->model_sha256, "%s", ikv_model_sha256(model));
    snprintf(meta->command, sizeof meta->command, "%s", o->command);
}

/* Dense attention maps grow as T^2: refuse big ones unless forced. */
static void check_attention_size(const capture_options *o, const run_context *rc, int n_layers)
{
    if (!o->out_path || !(o->signals & IKV_TRACE_ATTN_PROBS))
        return;
    double T = (double)rc->steps;
    double bytes = (double)n_layers * (double)rc->info->n_heads * T * (T + 1.0) / 2.0 *
                   (o->dtype == IKV_TRACE_F16 ? 2.0 : 4.0);
    double mb = bytes / 1e6;
    if (mb > o->attn_limit_mb && !o->force)
        ikv_die(IKV_EXIT_USAGE,
                "dense attention maps of %d layers x %d heads x %d positions would take %.0f MB before "
                "compression (limit %.0f MB): lower -n, pick --layers, or add --force",
                n_layers, rc->info->n_heads, rc->steps, mb, o->attn_limit_mb);
}

static int run_capture(const capture_options *o)
{
    char err[512];
    run_context rc;
    open_run(o, &rc);
    for (int i = 0; i < o->n_layers; i++)
        if (o->layers[i] >= rc.info->n_layers)
            ikv_die(IKV_EXIT_USAGE, "--layers: the model has %d layers (0..%d)", rc.info->n_layers,
                    rc.info->n_layers - 1);
    int n_layers = o->n_layers ? o->n_layers : rc.info->n_layers;
    check_attention_size(o, &rc, n_layers);
    if (o->out_path && (o->signals & IKV_TRACE_LOGITS_SUMMARY) && o->topk > rc.info->vocab_size)
        ikv_die(IKV_EXIT_USAGE, "--topk %d exceeds the vocabulary (%d)", o->topk, rc.info->vocab_size);

    capture_state cs;
    memset(&cs, 0, sizeof cs);
    cs.rc = &rc;
    cs.live = live_set_create(o, &rc, err, sizeof err);
    ikv_trace_writer *writer = NULL;
    ikv_trace_spec spec = ikv_trace_writer_default_spec();
    /* From the moment the temporary file exists, a stop signal must end in
     * a closed trace (complete=0), not kill us and leave the temporary. */
    ikv_cli_catch_stop_signals();
    if (o->out_path) {
        ikv_trace_meta meta;
        fill_meta(o, &rc, rc.model, &meta);
        spec.signals = o->signals;
        spec.topk = o->topk;
        spec.entropy_k = o->topk < spec.entropy_k ? o->topk : spec.entropy_k;
        spec.dtype = o->dtype;
        spec.deflate_level = o->deflate_level;
        spec.layers = o->n_layers ? o->layers : NULL;
        spec.n_layers = o->n_layers;
        spec.expected_tokens = rc.steps;
        spec.deferred_create = 1; /* by the recorder's thread (below) */
        spec.durable = o->durable;
        if (ikv_trace_writer_create(&writer, o->out_path, &meta, &spec, err, sizeof err) != 0)
            ikv_die(IKV_EXIT_USAGE, "%s", err);
    }
    /* the recorder's thread may be writing: it ends before the writer */
#define FAIL_RUNTIME(...)                                                                          \
    do {                                                                                           \
        ikv_recorder_free(cs.recorder);                                                            \
        cs.recorder = NULL;                                                                        \
        if (writer)                                                                                \
            ikv_trace_writer_abort(writer);                                                        \
        ikv_die(IKV_EXIT_RUNTIME, __VA_ARGS__);                                                    \
    } while (0)
    if (ikv_session_create(&cs.full, rc.model, rc.steps, o->threads, err, sizeof err) != IKV_OK)
        FAIL_RUNTIME("%s", err);
    if (writer) {
        /* positions are written on the recorder's thread, behind the engine */
        ikv_recorder_config rcfg = {cs.full, &spec, PREFILL_CHUNK, rc.steps, 0, 1, IKV_LOGITS_AUTO};
        if (ikv_recorder_create(&cs.recorder, writer, &rcfg, err, sizeof err) != IKV_OK)
            FAIL_RUNTIME("%s", err);
        ikv_observer obs = ikv_recorder_observer(cs.recorder);
        if (ikv_session_set_observer(cs.full, &obs) != IKV_OK)
            FAIL_RUNTIME("%s", ikv_session_error(cs.full));
    }
    ikv_progress progress;
    ikv_progress_start(&progress, writer ? "capture" : "run", rc.steps, o->quiet);
    run_stats st;
    int stream = !progress.enabled;
    int failed = run_sequence(&rc, cs.full, PREFILL_CHUNK, stream, after_positions, &cs, &progress, &st) != 0;
    ikv_progress_finish(&progress);
    if (!failed && cs.recorder && ikv_recorder_finish(cs.recorder, cs.err, sizeof cs.err) != IKV_OK)
        failed = 1;
    if (failed)
        FAIL_RUNTIME("%s%s%s", o->out_path ? o->out_path : "", o->out_path ? ": " : "", cs.err);
    if (!stream)
        print_text(&rc, &st);
    printf("\n");
    fflush(stdout);
    report_speed(o, &st, &rc, cs.full);
    int written = cs.recorder ? ikv_recorder_positions(cs.recorder) : st.n_run;
    ikv_recorder_free(cs.recorder);
    ikv_session_free(cs.full);
    if (live_set_finish(cs.live, o, &rc, st.n_run, writer, err, sizeof err) != 0)
        FAIL_RUNTIME("%s", err);
    live_set_free(cs.live);
    if (!st.stopped && influence_run(o, &rc, st.n_run, writer, err, sizeof err) != 0)
        FAIL_RUNTIME("%s", err);
    int stopped = st.stopped || ikv_cli_stop_requested();
    if (writer) {
        if (ikv_trace_writer_close(writer, !stopped, err, sizeof err) != 0)
            ikv_die(IKV_EXIT_RUNTIME, "%s", err);
        ikv_note(o->quiet, "%s: %d positions (prompt %d)%s", o->out_path, written, rc.n_prompt,
                 stopped ? ", interrupted: complete=0" : "");
    }
#undef FAIL_RUNTIME
    close_run(&rc);
    return stopped ? IKV_EXIT_RUNTIME : IKV_EXIT_OK;
}

int main(int argc, char **argv)
{
    capture_options options;
    ikv_cli_init(argv[0]);
    parse_options(argc, argv, &options);
    if (options.out_path || options.policies || options.influence)
        return run_capture(&options);
    return run_generate(&options);
}
