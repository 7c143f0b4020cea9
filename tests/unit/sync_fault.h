/*
 * A test binary's own fdatasync, which the trace writer linked into it
 * calls instead of the C library's (on its background thread, while a
 * capture runs): it counts the calls and fails with EIO on request.
 */
#ifndef IKV_TEST_SYNC_FAULT_H
#define IKV_TEST_SYNC_FAULT_H

extern volatile int ikv_fail_fdatasync; /* 1: every call fails with EIO */
extern volatile int ikv_fdatasync_calls;

#endif
