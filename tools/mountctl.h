/* SPDX-License-Identifier: MIT */
/* Talking to a running mount from the command line: its process, a
 * sync, the unmount (used by `vmferry sync`, `umount` and `run`).
 * Stateless; the calling thread.  Errors are returned, not printed.
 */
#ifndef VMFERRY_MOUNTCTL_H
#define VMFERRY_MOUNTCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The pid of the mount's process.  Returns 0, or -ENOTCONN when mp is
 * not a vmferry mount (or does not answer). */
int mountctl_pid(const char *mp, pid_t *ret);

/* Whether the mount refuses writes (--read-only, or a token without
 * the write grant).  0 and *ret, or -ENOTCONN. */
int mountctl_read_only(const char *mp, bool *ret);

/* Sync now.  Returns 0 with the version committed (or already held) in
 * *ret_version and the mount's message in ret_msg; -ENOTCONN (not a
 * mount); -ESTALE for a conflict, -EIO for any other failure, with the
 * mount's reason in ret_msg.  ret_msg has room for len.  Blocks for as
 * long as the sync takes. */
int mountctl_sync(const char *mp, uint64_t *ret_version, char *ret_msg,
		  size_t len);

/* fusermount3 -u mp, then wait (up to 60 s) until the mount's process
 * has ended (its final sync done, its cache closed).  Returns 0,
 * -ENOTCONN (not a mount), -EBUSY (fusermount3 failed: in use?) or
 * -ETIMEDOUT. */
int mountctl_umount(const char *mp);

#endif
