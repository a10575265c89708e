/* SPDX-License-Identifier: MIT */
/* Privileges: secret files that only their owner may read, and `serve
 * --user`, which drops root once the socket is bound and the secrets
 * are read.  Single-threaded callers (before the server's threads
 * start).  Every failure is logged here with what to do about it.
 */
#ifndef VMFERRY_PRIVS_H
#define VMFERRY_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

struct privs_user {
	char name[64];
	uid_t uid;
	gid_t gid;
};

/* Read a secret file (a private key, tokens.json): refused with -EPERM
 * if group or others may access it (chmod 600).  *ret_buf as
 * read_file(); ret_buf NULL only checks. */
int privs_read_secret(const char *path, size_t max, char **ret_buf);

/* Look up a user name (or a decimal uid).  -ENOENT. */
int privs_lookup(const char *name, struct privs_user *ret);
/* Become u: supplementary groups, gid, then uid.  Fails (-EPERM) unless
 * the process is root or already u; afterwards checks that root cannot
 * be regained. */
int privs_drop(const struct privs_user *u);
/* Check that the data directory is usable by the current user; logs
 * which part is not and how to fix it.  -EACCES. */
int privs_check_dir(const char *dir, const struct privs_user *u);

#endif
