#include "config.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sync_fault.h"

volatile int ikv_fail_fdatasync;
volatile int ikv_fdatasync_calls;
volatile int ikv_fail_fsync;
volatile int ikv_fsync_calls;

int fdatasync(int fd)
{
    ikv_fdatasync_calls++;
    if (ikv_fail_fdatasync) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd)
{
    ikv_fsync_calls++;
    if (ikv_fail_fsync) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}
