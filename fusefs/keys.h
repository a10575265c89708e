/* SPDX-License-Identifier: MIT */
/* The user's key (a key file or a passphrase) and the cache's wrapped
 * data key.
 *
 * User key file: 64 hex digits and a newline (a 256-bit key), mode 0600.
 * A passphrase is turned into a key by scrypt (passphrase.h) with the
 * parameters and salt recorded in data.key.
 * Cache directory files owned here:
 *   DIR/cache.id   16 random bytes naming this cache (AAD for everything)
 *   DIR/data.key   the data key wrapped by the user's key, 96 bytes:
 *        0  8  magic "VMFDKEY2"
 *        8  1  kind: 1 key file, 2 passphrase (enum keys_kind)
 *        9  1  KDF: 0 none (key file), 1 scrypt (passphrase)
 *       10  1  scrypt log2(N), 0 without a KDF
 *       11  1  0
 *       12  4  scrypt r, big-endian, 0 without a KDF
 *       16  4  scrypt p, big-endian, 0 without a KDF
 *       20 16  scrypt salt, zeros without a KDF
 *       36 60  the wrapped data key (crypto_wrap_key(), with bytes 0..35
 *              as its context: editing the header fails the unwrap)
 *     A 60-byte data.key (the first format: a bare wrapped key, no
 *     context) is read as one wrapped by a key file.
 * Both are written atomically (lib/io.h write_file_atomic).  Destroying a
 * copy overwrites data.key first (keys_destroy()).
 *
 * Stateless; call from one thread at start-up.  Key buffers returned are
 * the caller's to crypto_cleanse(); a struct keys_user is cleansed by
 * keys_user_fini().
 */
#ifndef VMFERRY_KEYS_H
#define VMFERRY_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"
#include "passphrase.h"

enum keys_kind {
	KEYS_KIND_FILE = 1,	  /* a 256-bit key from a key file */
	KEYS_KIND_PASSPHRASE = 2, /* a passphrase, through scrypt */
};

/* What the user holds to open a copy. */
struct keys_user {
	enum keys_kind kind;
	uint8_t key[CRYPTO_KEY_LEN]; /* KEYS_KIND_FILE */
	char pass[PASSPHRASE_MAX];   /* KEYS_KIND_PASSPHRASE: pass_len bytes */
	size_t pass_len;
};

/* Cleanse u (all of it; it can be used again after filling it anew). */
void keys_user_fini(struct keys_user *u);

/* "key file" or "passphrase". */
const char *keys_kind_name(enum keys_kind kind);

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

/* The kind of key that wraps dir's data.key: 0, -ENOENT (none), -EPROTO
 * (not a data.key this version reads), -errno. */
int keys_data_kind(const char *dir, enum keys_kind *ret_kind);

/* Open the keys of cache directory dir (which must exist): read cache.id
 * and unwrap data.key with user (a passphrase is derived with the
 * parameters data.key records: this blocks for the derivation).  If
 * data.key does not exist (a new directory, one keys_destroy() ran on,
 * or a creation a crash cut short), create a new cache id and a new
 * random data key, wrap it under user (a passphrase with new default
 * parameters and salt) and write both (cache.id first, data.key last):
 * anything dir still holds from before can no longer be opened, and
 * cache_open() empties it.  Nothing is written otherwise.  Errors:
 * -EBADMSG (wrong key or passphrase, or a tampered data.key),
 * -EKEYREJECTED (data.key is wrapped by the other kind of key), -EPROTO
 * (data.key damaged: its size, magic or parameters), -EIO (data.key
 * without cache.id, or a cache.id of the wrong size). */
int keys_data_open(const char *dir, const struct keys_user *user,
		   uint8_t ret_cache_id[CRYPTO_CACHE_ID_LEN],
		   uint8_t ret_data_key[CRYPTO_KEY_LEN]);

/* Re-wrap dir's data key: unwrap it with old, wrap it under new (a new
 * salt for a passphrase) and replace data.key atomically.  cache.id and
 * everything else in dir are left as they are.  Errors as for
 * keys_data_open() about old (never creating: -ENOENT without data.key),
 * or -errno writing.  On any error data.key is unchanged. */
int keys_rekey(const char *dir, const struct keys_user *old,
	       const struct keys_user *new_user);

/* Overwrite data.key with random bytes, fsync, then unlink it and fsync
 * dir.  After this nothing in dir can be decrypted; cache.id stays, and
 * the next keys_data_open() starts a new identity.  -ENOENT is not an
 * error. */
int keys_destroy(const char *dir);

#endif
