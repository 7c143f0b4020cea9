/*
 * A test binary's own fdatasync and fsync, which the trace writer linked
 * into it calls instead of the C library's (fdatasync on its background
 * thread while a capture runs, fsync at close): they fail with EIO on
 * request, and both count their calls.
 */
#ifndef IKV_TEST_SYNC_FAULT_H
#define IKV_TEST_SYNC_FAULT_H

extern volatile int ikv_fail_fdatasync; /* 1: every call fails with EIO */
extern volatile int ikv_fdatasync_calls;
extern volatile int ikv_fail_fsync;     /* 1: every call fails with EIO */
extern volatile int ikv_fsync_calls;

#endif
