/*
 * main.c - the CUnit runner: registers every suite (suites.h) and runs them.
 * Run from the repository root. Exit status 1 if any test failed.
 */
#include <CUnit/Basic.h>
#include <stdio.h>

#include "suites.h"

int main(void)
{
    unsigned failed;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
#define SUITE(name) suite_##name();
    ALL_SUITES
#undef SUITE
    CU_basic_set_mode(CU_BRM_NORMAL);
    CU_basic_run_tests();
    failed = CU_get_number_of_tests_failed();
    printf("\nunit: %u passed, %u failed\n", CU_get_number_of_tests_run() - failed, failed);
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
