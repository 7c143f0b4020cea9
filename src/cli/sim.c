/*
 * infokv-sim: replay traces under eviction policies x budgets x parameters
 * and write tables, figures and a report.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef HAVE_MPI
#include <mpi.h>
#endif

#include "cli/common.h"
#include "infokv/core.h"
#include "sim/jobs.h"
#include "sim/run.h"
#include "sim/tables.h"
#include "util/outfile.h"

#define DEFAULT_BUDGETS "10%,25%,50%"

typedef struct sim_options {
    const char *outdir;
    const char *policies;
    const char *budgets;
    const char *scenarios;
    ikv_sweep sweeps[16];
    int n_sweeps;
    int layers[4096];
    int n_layers;
    int fi_tokens;
    int fi_queries;
    unsigned long long seed;
    int threads;
    int plots;
    int quiet;
    int budgets_given;
    char **traces;
    int n_traces;
} sim_options;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: infokv-sim [OPTION]... TRACE...\n"
            "Replay infokv traces under KV-cache eviction policies and budgets; write\n"
            "TSV tables, gnuplot figures and a report (report.md, index.html).\n"
            "\n"
            "  -o, --out DIR          output folder (default: sim-out)\n"
            "  -P, --policies LIST    comma list or 'all' (default: all):\n"
            "                         full random streaming h2o tova snapkv pyramidkv infokv oracle\n"
            "  -b, --budgets LIST     slots kept per (layer, KV head): counts and fractions,\n"
            "                         e.g. 32,64,128,25%% (default: %s)\n"
            "  -s, --scenario LIST    prefill, decode, or prefill,decode (default: prefill)\n"
            "  -p, --param SPEC       sweep a parameter: [policy.]key=v1,v2,... (repeatable),\n"
            "                         e.g. --param infokv.alpha=0.2,0.5\n"
            "      --layers LIST      model layers to replay (default: all stored)\n"
            "      --fi-tokens N      tokens per Forward Influence set (default 16, 0 = off)\n"
            "      --fi-queries N     queries sampled per distance bucket (default 64, 0 = all)\n"
            "      --seed N           seed of the random token set (default 1)\n"
            "  -j, --threads N        worker threads (default: all cores)\n"
            "      --no-plots         tables and report only, no figures\n"
            "  -q, --quiet            no progress bar or notes\n"
            "      --list-policies    print every policy's parameters and defaults\n"
            "  -h, --help             this help\n"
            "  -V, --version          version\n"
            "\n"
            "Budgets given as fractions are of the prompt (prefill) or of the whole\n"
            "sequence (decode). With the default budgets, a budget a policy cannot honour\n"
            "on a trace (below SnapKV's window, say) is skipped with a note; budgets given\n"
            "with --budgets must work for every policy and trace.\n"
            "Exit status: 0 ok, 1 runtime failure, 2 bad usage or input.\n",
            DEFAULT_BUDGETS);
}

static void list_policies(void)
{
    for (int k = 0; k < IKV_POLICY_COUNT; k++) {
        printf("%s\n", ikv_policy_name((ikv_policy_kind)k));
        ikv_params defaults = ikv_default_params((ikv_policy_kind)k);
        for (int i = 0;; i++) {
            const ikv_param_info *info = ikv_param_info_at((ikv_policy_kind)k, i);
            if (!info)
                break;
            char value[64] = "";
            /* the policy's own default where it differs from the generic one */
            if (strcmp(info->key, "interval") == 0)
                snprintf(value, sizeof value, "%d", defaults.interval);
            else if (strcmp(info->key, "alloc") == 0)
                snprintf(value, sizeof value, "%s", defaults.allocation == IKV_ALLOC_PYRAMID ? "pyramid" : "uniform");
            else
                snprintf(value, sizeof value, "%s", info->default_text);
            printf("  %-13s %-8s %s\n", info->key, value, info->help);
        }
    }
}

static void parse_args(int argc, char **argv, sim_options *o)
{
    enum { OPT_LAYERS = 256, OPT_FI_TOKENS, OPT_FI_QUERIES, OPT_SEED, OPT_NO_PLOTS, OPT_LIST };
    static const struct option longs[] = {
        {"out", required_argument, NULL, 'o'},
        {"policies", required_argument, NULL, 'P'},
        {"budgets", required_argument, NULL, 'b'},
        {"scenario", required_argument, NULL, 's'},
        {"param", required_argument, NULL, 'p'},
        {"layers", required_argument, NULL, OPT_LAYERS},
        {"fi-tokens", required_argument, NULL, OPT_FI_TOKENS},
        {"fi-queries", required_argument, NULL, OPT_FI_QUERIES},
        {"seed", required_argument, NULL, OPT_SEED},
        {"threads", required_argument, NULL, 'j'},
        {"no-plots", no_argument, NULL, OPT_NO_PLOTS},
        {"quiet", no_argument, NULL, 'q'},
        {"list-policies", no_argument, NULL, OPT_LIST},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->outdir = "sim-out";
    o->policies = "all";
    o->budgets = DEFAULT_BUDGETS;
    o->scenarios = "prefill";
    o->fi_tokens = 16;
    o->fi_queries = 64;
    o->seed = 1;
    o->plots = 1;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:P:b:s:p:j:qhV", longs, NULL)) != -1) {
        char err[256];
        switch (c) {
        case 'o': o->outdir = optarg; break;
        case 'P': o->policies = optarg; break;
        case 'b': o->budgets = optarg; o->budgets_given = 1; break;
        case 's':
            o->scenarios = strcmp(optarg, "both") == 0 ? "prefill,decode" : optarg;
            break;
        case 'p':
            if (o->n_sweeps == (int)(sizeof o->sweeps / sizeof *o->sweeps))
                ikv_die(IKV_EXIT_USAGE, "--param: at most 16 sweeps");
            if (ikv_sweep_parse(optarg, &o->sweeps[o->n_sweeps], err, sizeof err) != 0)
                ikv_die(IKV_EXIT_USAGE, "%s", err);
            o->n_sweeps++;
            break;
        case OPT_LAYERS:
            o->n_layers = ikv_parse_index_list("--layers", optarg, 100000, o->layers,
                                               (int)(sizeof o->layers / sizeof *o->layers));
            break;
        case OPT_FI_TOKENS: o->fi_tokens = (int)ikv_parse_long_option("--fi-tokens", optarg, 0, 100000); break;
        case OPT_FI_QUERIES: o->fi_queries = (int)ikv_parse_long_option("--fi-queries", optarg, 0, 1000000); break;
        case OPT_SEED: o->seed = (unsigned long long)ikv_parse_long_option("--seed", optarg, 0, 0x7fffffffL); break;
        case 'j': o->threads = (int)ikv_parse_long_option("--threads", optarg, 1, 4096); break;
        case OPT_NO_PLOTS: o->plots = 0; break;
        case 'q': o->quiet = 1; break;
        case OPT_LIST: list_policies(); exit(IKV_EXIT_OK);
        case 'h': usage(stdout); exit(IKV_EXIT_OK);
        case 'V':
#ifdef HAVE_MPI
            printf("infokv-sim (infokv) %s, with MPI\n", PACKAGE_VERSION);
#else
            printf("infokv-sim (infokv) %s\n", PACKAGE_VERSION);
#endif
            exit(IKV_EXIT_OK);
        case ':': ikv_die(IKV_EXIT_USAGE, "option '%s' needs a value (see --help)", argv[optind - 1]);
        default: ikv_die(IKV_EXIT_USAGE, "unknown option '%s' (see --help)", argv[optind - 1]);
        }
    }
    o->traces = argv + optind;
    o->n_traces = argc - optind;
    if (o->n_traces == 0)
        ikv_die(IKV_EXIT_USAGE, "no trace given (usage: infokv-sim [OPTION]... TRACE...; see --help)");
}

/* Creates the output folder and checks it takes files, before any work. */
static void prepare_outdir(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path - 64)
        ikv_die(IKV_EXIT_USAGE, "--out: bad folder name");
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            ikv_die(IKV_EXIT_USAGE, "%s: cannot create: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        ikv_die(IKV_EXIT_USAGE, "%s: cannot create: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        ikv_die(IKV_EXIT_USAGE, "%s: not a folder", dir);
    snprintf(path, sizeof path, "%s/.infokv-write-test-%ld", dir, (long)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        ikv_die(IKV_EXIT_USAGE, "%s: cannot write there: %s", dir, strerror(errno));
    fclose(f);
    unlink(path);
}

/* ---- many processes: MPI ranks share the (trace, layer) units ---- */

static int rank = 0, ranks = 1;

#ifdef HAVE_MPI
/* MPI is used only when a launcher started us (mpirun sets these). */
static int launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK") ||
           getenv("MPI_LOCALNRANKS");
}

static int owns_unit(void *user, int64_t unit)
{
    (void)user;
    return unit % ranks == rank;
}

static void sum_across_ranks(void *user, void *values, size_t count, char type)
{
    (void)user;
    MPI_Datatype t = type == 'd' ? MPI_DOUBLE : type == 'l' ? MPI_LONG : MPI_FLOAT;
    size_t size = type == 'd' ? sizeof(double) : type == 'l' ? sizeof(long) : sizeof(float);
    for (size_t off = 0; off < count; off += (size_t)1 << 28) {
        size_t n = count - off < ((size_t)1 << 28) ? count - off : ((size_t)1 << 28);
        MPI_Allreduce(MPI_IN_PLACE, (char *)values + off * size, (int)n, t, MPI_SUM, MPI_COMM_WORLD);
    }
}
#endif

/* Ends every rank with the same status; the lowest failing rank says why. */
static void finish_ranks(int status, const char *message)
{
#ifdef HAVE_MPI
    if (ranks > 1) {
        int worst = status, first = status ? rank : ranks;
        MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        if (worst == 0)
            return;
        ikv_cli_mute(rank != first);
        MPI_Finalize();
        if (rank == first)
            ikv_die(status, "%s", message);
        exit(worst);
    }
#endif
    if (status)
        ikv_die(status, "%s", message);
}

/* Removes the report of an earlier run (analysis/report.sh writes it
 * after the tables): it must not stand beside this run's tables. */
static void remove_report(const char *dir)
{
    static const char *const names[] = {"report.md", "index.html"};
    char path[4096];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) < (int)sizeof path)
            unlink(path);
}

static ikv_progress progress;

static void on_progress(void *user, int64_t done, int64_t total)
{
    (void)user;
    progress.total = total;
    ikv_progress_update(&progress, done);
}

static void on_warn(void *user, const char *message)
{
    const sim_options *o = user;
    if (!o->quiet) {
        if (progress.enabled)
            fputc('\n', stderr);
        ikv_warn("%s", message);
    }
}

/* Folder holding plots/ and analysis/: $INFOKV_DATADIR, the installed data
 * folder, or the source tree this binary was built from. */
static const char *data_dir(void)
{
    static const char *candidates[3];
    candidates[0] = getenv("INFOKV_DATADIR");
    candidates[1] = IKV_PKGDATADIR;
    candidates[2] = IKV_SRCDIR;
    for (int i = 0; i < 3; i++) {
        if (!candidates[i] || !*candidates[i])
            continue;
        char probe[4096];
        snprintf(probe, sizeof probe, "%s/analysis/report.sh", candidates[i]);
        if (access(probe, R_OK) == 0)
            return candidates[i];
    }
    return NULL;
}

/* Runs analysis/report.sh, which draws the figures (when gnuplot is
 * present and plots are wanted) and writes report.md and index.html. */
static int make_report(const sim_options *o)
{
    const char *dir = data_dir();
    if (!dir) {
        ikv_warn("analysis/report.sh not found (set INFOKV_DATADIR): tables written, no report");
        return 1;
    }
    char script[4096];
    snprintf(script, sizeof script, "%s/analysis/report.sh", dir);
    pid_t pid = fork();
    if (pid < 0) {
        ikv_warn("cannot start the report script: %s", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        setenv("INFOKV_DATADIR", dir, 1);
        if (!o->plots)
            setenv("INFOKV_NO_PLOTS", "1", 1);
        if (o->quiet)
            setenv("INFOKV_QUIET", "1", 1);
        execl("/bin/sh", "sh", script, o->outdir, (char *)NULL);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        ikv_warn("the report script failed (tables are complete in %s)", o->outdir);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    ikv_cli_init(argv[0]);
#ifdef HAVE_MPI
    if (launched_by_mpi()) {
        MPI_Init(&argc, &argv);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &ranks);
        /* every rank sees the same flags and traces: rank 0 speaks for all */
        ikv_cli_mute(rank != 0);
    }
#endif
    sim_options o;
    parse_args(argc, argv, &o);
    char err[1024];
    ikv_sim_jobs jobs;
    if (ikv_sim_jobs_expand(o.policies, o.budgets, o.scenarios, o.sweeps, o.n_sweeps, &jobs, err,
                            sizeof err) != 0)
        ikv_die(IKV_EXIT_USAGE, "%s", err);
    for (int i = 0; i < o.n_traces; i++)
        if (access(o.traces[i], R_OK) != 0)
            ikv_die(IKV_EXIT_USAGE, "%s: %s", o.traces[i], strerror(errno));
    /* Live runs recorded in the traces are replayed too, for comparison. */
    int before = jobs.n;
    int lrc = ikv_sim_add_live_jobs((const char *const *)o.traces, o.n_traces, &jobs, err, sizeof err);
    if (lrc != IKV_SIM_OK)
        ikv_die(lrc == IKV_SIM_EINPUT ? IKV_EXIT_USAGE : IKV_EXIT_RUNTIME, "%s", err);
    if (jobs.n > before)
        ikv_note(o.quiet, "%d more jobs replay the configurations of the traces' live runs", jobs.n - before);
    prepare_outdir(o.outdir);
#ifdef _OPENMP
    if (o.threads > 0)
        omp_set_num_threads(o.threads);
#endif
    ikv_cli_catch_stop_signals();

    ikv_sim_options so = ikv_sim_default_options();
    so.fi_tokens = o.fi_tokens;
    so.fi_per_bucket = o.fi_queries;
    so.seed = o.seed;
    so.layers = o.n_layers ? o.layers : NULL;
    so.n_layers = o.n_layers;
    so.skip_impossible = !o.budgets_given;
    so.progress = on_progress;
    so.warn = on_warn;
    so.user = &o;
    so.should_stop = ikv_cli_stop_requested;
#ifdef HAVE_MPI
    if (ranks > 1)
        so.owns_unit = owns_unit;
#endif
    ikv_note(o.quiet, "%d jobs (policies x parameters x budgets x scenarios) on %d trace%s%s", jobs.n,
             o.n_traces, o.n_traces == 1 ? "" : "s", ranks > 1 ? ", spread over MPI ranks" : "");
    ikv_progress_start(&progress, "replay", 1, o.quiet || rank != 0);
    double t0 = ikv_now();
    ikv_sim_results res;
    int rc = ikv_sim_run((const char *const *)o.traces, o.n_traces, &jobs, &so, &res, err, sizeof err);
    ikv_progress_finish(&progress);
    if (rc == IKV_SIM_ESTOPPED)
        snprintf(err, sizeof err, "interrupted: no output written");
    finish_ranks(rc == IKV_SIM_OK ? 0 : rc == IKV_SIM_EINPUT ? IKV_EXIT_USAGE : IKV_EXIT_RUNTIME, err);
#ifdef HAVE_MPI
    if (ranks > 1)
        ikv_sim_results_visit_sums(&res, sum_across_ranks, NULL);
    if (ranks > 1 && rank != 0) { /* rank 0 writes the tables */
        ikv_sim_results_free(&res);
        ikv_sim_jobs_free(&jobs);
        MPI_Finalize();
        return IKV_EXIT_OK;
    }
#endif
    double elapsed = ikv_now() - t0;
    remove_report(o.outdir);
    if (ikv_sim_write_tables(&res, o.outdir, err, sizeof err) != 0)
        ikv_die(IKV_EXIT_RUNTIME, "%s", err);
    ikv_sim_results_free(&res);
    ikv_sim_jobs_free(&jobs);
    int report_failed = make_report(&o);
    ikv_note(o.quiet, "replayed in %.1f s; %s in %s/", elapsed,
             report_failed ? "tables" : "tables, figures and report", o.outdir);
    printf("%s/%s\n", o.outdir, report_failed ? "summary.tsv" : "report.md");
#ifdef HAVE_MPI
    if (ranks > 1)
        MPI_Finalize();
#endif
    return IKV_EXIT_OK;
}
