/*
 * Shared main() for the CUnit suites: runs every registered suite in basic
 * mode and ends with a line "SUMMARY passed=N failed=M" that scripts/test
 * sums across suites. Exit status: 0 all passed, 1 a test failed, 77 (skip)
 * when a suite registered nothing runnable.
 */
#ifndef IKV_TEST_RUNNER_H
#define IKV_TEST_RUNNER_H

#include <CUnit/CUnit.h>

typedef struct ikv_test_case {
    const char *name;
    CU_TestFunc fn;
} ikv_test_case;

/* Adds a suite from a NULL-terminated array of cases. */
void ikv_test_suite(const char *name, const ikv_test_case *cases);

/* Runs all suites added by `add_suites`. */
int ikv_test_main(int argc, char **argv, void (*add_suites)(void));

/* Directory of the shared real models (../shared/models beside the
 * checkout, or $IKV_MODELS), or NULL when absent: tests that need them
 * say so and pass without asserting. */
const char *ikv_test_models_dir(void);

/* Prints a skip notice for the current test (it then counts as passed). */
void ikv_test_skip(const char *why);

#endif
