/* SPDX-License-Identifier: MIT */
/* Where local copies live, and the lock that says one is in use.
 *
 * A copy of image NAME from HOST:PORT lives in CACHE/HOST_PORT/NAME,
 * CACHE being --cache DIR or $XDG_CACHE_HOME/vmferry (~/.cache/vmferry).
 * A mount holds an exclusive flock on DIR/in-use for as long as it runs,
 * so a second mount of the same copy, or `vmferry discard` under a running
 * mount, is refused.  Stateless; any thread.
 */
#ifndef VMFERRY_LOCAL_H
#define VMFERRY_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#include "remote.h"

/* $XDG_<env> or $HOME/<fallback>, then "/vmferry" + suffix, into buf.
 * Returns 0, -ENOENT (neither set) or -ENAMETOOLONG. */
int local_xdg_path(const char *env, const char *fallback, const char *suffix,
		   char *buf, size_t len);

/* The cache base: cache_base, or the XDG default when NULL. */
int local_cache_base(const char *cache_base, char *buf, size_t len);

/* Call fn(dir, opaque) for every copy directory under the cache base
 * (BASE/HOST_PORT/NAME holding data.key or lifecycle.json), in sorted
 * order, until fn returns a negative value (returned).  A base that does
 * not exist holds no copies. */
int local_each_copy(const char *base, int (*fn)(const char *dir, void *opaque),
		    void *opaque);

/* Is the copy in dir mounted (its in-use lock held by a process)? */
bool local_in_use(const char *dir);

/* The copy's directory for url under cache_base (NULL: the XDG default). */
int local_copy_dir(const char *cache_base, const struct remote_url *url,
		   char *buf, size_t len);

/* Take the in-use lock of copy directory dir (which must exist).  Returns
 * 0 and an fd to keep open while in use, or -EBUSY if another process
 * holds it. */
int local_lock(const char *dir, int *ret_fd);

/* Load the user's key from key_file (NULL: $XDG_CONFIG_HOME/vmferry/
 * user.key), creating it (0600, with a notice) if absent and create is
 * set.  Logs what went wrong in the user's terms; returns 0 or -errno. */
int local_user_key(const char *key_file, bool create,
		   uint8_t ret_key[CRYPTO_KEY_LEN]);

#endif
