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
#include "keys.h"

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

/* How the user unlocks a copy: the key options every command that opens
 * one takes.  At most one of the three is given; none means the default
 * key file. */
struct local_key_opts {
	const char *key_file;	     /* --key-file FILE */
	const char *passphrase_file; /* --passphrase-file FILE */
	bool passphrase;	     /* --passphrase: ask on the terminal */
};

/* 0, or -EINVAL (logged) if more than one way is given. */
int local_key_opts_check(const struct local_key_opts *o, const char *prefix);

/* Load what the user holds to open the copy in dir (which need not
 * exist), as o says.  If dir's data.key is wrapped by the other kind of
 * key, say so before asking anything (-EKEYREJECTED).  When dir has no
 * data.key yet and create is set, the key is for a new copy: a missing
 * key file is created (0600, with a notice) and a passphrase asked on
 * the terminal is asked twice.  Logs what went wrong in the user's
 * terms; returns 0 or -errno.  *ret is the caller's to keys_user_fini(). */
int local_user_secret(const struct local_key_opts *o, const char *dir,
		      bool create, struct keys_user *ret);

/* The new key for `vmferry rekey`: as local_user_secret() for a new
 * copy, except that nothing given means asking on the terminal. */
int local_new_secret(const struct local_key_opts *o, const char *dir,
		     struct keys_user *ret);

/* keys_data_open() on dir, its errors logged in the user's terms ("wrong
 * passphrase for the local copy in DIR"). */
int local_open_keys(const char *dir, const struct keys_user *user,
		    uint8_t ret_cache_id[CRYPTO_CACHE_ID_LEN],
		    uint8_t ret_data_key[CRYPTO_KEY_LEN]);

/* Log r, an error of keys_data_open() or keys_rekey() about dir opened
 * with user, in the user's terms; returns r. */
int local_keys_error(int r, const char *dir, const struct keys_user *user);

/* Load the user's key from key_file (NULL: $XDG_CONFIG_HOME/vmferry/
 * user.key), creating it (0600, with a notice) if absent and create is
 * set.  Logs what went wrong in the user's terms; returns 0 or -errno. */
int local_user_key(const char *key_file, bool create,
		   uint8_t ret_key[CRYPTO_KEY_LEN]);

/* remote_read_token(file, ret), saying what is wrong in the user's
 * terms. */
int local_load_token(const char *file, char **ret);

#endif
