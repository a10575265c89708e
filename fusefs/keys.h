/* SPDX-License-Identifier: MIT */
/* The user's key file and the cache's wrapped data key.
 *
 * User key file: 64 hex digits and a newline (a 256-bit key), mode 0600.
 * Cache directory files owned here:
 *   DIR/cache.id   16 random bytes naming this cache (AAD for everything)
 *   DIR/data.key   the data key wrapped by the user key (crypto.h)
 * Both are written atomically (lib/io.h write_file_atomic).  Destroying a
 * copy overwrites data.key first (keys_destroy()).
 *
 * Stateless; call from one thread at start-up.  Key buffers returned are
 * the caller's to crypto_cleanse().
 */
#ifndef VMFERRY_KEYS_H
#define VMFERRY_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"

/* Load the user key from path.  If the file does not exist and create is
 * true, generate a new random key, write it with mode 0600 (parent
 * directories created 0700; a key file created concurrently by another
 * process is never replaced, but loaded) and set *ret_created (true if
 * this call created it; ret_created may be NULL).  Errors: -ENOENT (absent
 * and !create), -EBADMSG (not 64 hex digits and an optional newline),
 * -EPERM (any permission bit for group or others: refuse, like ssh),
 * -EINVAL (not a regular file), other -errno from the filesystem. */
int keys_user_load(const char *path, bool create,
		   uint8_t ret_key[CRYPTO_KEY_LEN], bool *ret_created);

/* Open the keys of cache directory dir (which must exist): read cache.id
 * and unwrap data.key with user_key.  If data.key does not exist (a new
 * directory, one keys_destroy() ran on, or a creation a crash cut short),
 * create a new cache id and a new random data key, wrap it and write both
 * (cache.id first, data.key last): anything dir still holds from before
 * can no longer be opened, and cache_open() empties it.  Errors:
 * -EBADMSG (wrong user key or damaged data.key: the message to the user
 * should say "wrong key"), -EIO (data.key without cache.id, or a cache.id
 * of the wrong size). */
int keys_data_open(const char *dir, const uint8_t user_key[CRYPTO_KEY_LEN],
		   uint8_t ret_cache_id[CRYPTO_CACHE_ID_LEN],
		   uint8_t ret_data_key[CRYPTO_KEY_LEN]);

/* Overwrite data.key with random bytes, fsync, then unlink it and fsync
 * dir.  After this nothing in dir can be decrypted; cache.id stays, and
 * the next keys_data_open() starts a new identity.  -ENOENT is not an
 * error. */
int keys_destroy(const char *dir);

#endif
