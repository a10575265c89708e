/* SPDX-License-Identifier: MIT */
/* File I/O helpers: whole reads/writes, atomic replace, directories.
 *
 * Stateless; any thread.  All return 0 (or a count) or -errno.
 */
#ifndef VMFERRY_IO_H
#define VMFERRY_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read exactly len bytes at off; -EIO on a short file. */
int full_pread(int fd, void *buf, size_t len, off_t off);
/* Write all of (buf, len) at off. */
int full_pwrite(int fd, const void *buf, size_t len, off_t off);
/* Write all of (buf, len) at the current position (pipes, sockets). */
int full_write(int fd, const void *buf, size_t len);
/* Read until len bytes or EOF; returns the count. */
ssize_t read_up_to(int fd, void *buf, size_t len);

/* Read up to len bytes of a private file (a key, a passphrase) into buf;
 * returns the count.  Like ssh, refuses a file that any group or other
 * permission bit is set on (-EPERM: it may have been read or replaced by
 * someone else), and one that is not a regular file (-EINVAL).  The
 * caller clears buf. */
ssize_t read_private(const char *path, void *buf, size_t len);

/* Replace path with (buf, len) atomically and durably: write a temporary
 * file in the same directory, fsync it, rename it over path, fsync the
 * directory. */
int write_file_atomic(const char *path, const void *buf, size_t len,
		      mode_t mode);

/* Read fd to end of file, at most max bytes, into a new NUL-terminated
 * buffer (caller frees).  -EFBIG if there is more. */
int read_fd(int fd, size_t max, char **ret_buf, size_t *ret_len);

/* Read a whole file of at most max bytes into a new NUL-terminated
 * buffer (caller frees).  -EFBIG if larger. */
int read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len);

/* fsync the directory that holds path. */
int fsync_parent_dir(const char *path);

/* mkdir -p with mode for every created component. */
int mkdir_p(const char *path, mode_t mode);

/* Remove a directory tree (rm -rf).  -ENOENT is not an error. */
int rm_rf(const char *path);

#endif
