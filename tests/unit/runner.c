#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <CUnit/Basic.h>

#include "runner.h"

void ikv_test_suite(const char *name, const ikv_test_case *cases)
{
    CU_pSuite suite = CU_add_suite(name, NULL, NULL);
    if (!suite) {
        fprintf(stderr, "cannot add suite %s: %s\n", name, CU_get_error_msg());
        exit(1);
    }
    for (const ikv_test_case *c = cases; c->name; c++) {
        if (!CU_add_test(suite, c->name, c->fn)) {
            fprintf(stderr, "cannot add test %s: %s\n", c->name, CU_get_error_msg());
            exit(1);
        }
    }
}

static int is_dir(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *ikv_test_models_dir(void)
{
    static char path[4096];
    const char *env = getenv("IKV_MODELS");
    if (env && *env)
        return is_dir(env) ? env : NULL;
    const char *top = getenv("top_srcdir");
    snprintf(path, sizeof path, "%s/../shared/models", top && *top ? top : ".");
    return is_dir(path) ? path : NULL;
}

void ikv_test_skip(const char *why)
{
    printf("\n    skipped: %s ", why);
    fflush(stdout);
}

int ikv_test_main(int argc, char **argv, void (*add_suites)(void))
{
    (void)argc;
    (void)argv;
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
        return 1;
    }
    add_suites();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned run = CU_get_number_of_tests_run();
    unsigned failed = CU_get_number_of_tests_failed();
    unsigned asserts_failed = CU_get_number_of_failures();
    printf("\nSUMMARY passed=%u failed=%u\n", run - failed, failed);
    CU_cleanup_registry();
    if (run == 0)
        return 77;
    return (failed || asserts_failed) ? 1 : 0;
}
