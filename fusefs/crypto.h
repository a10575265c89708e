/* SPDX-License-Identifier: MIT */
/* AES-256-GCM sealing of cache blocks and key wrapping (OpenSSL).
 *
 * Sealed layout: nonce (12) | ciphertext (len) | tag (16).  The nonce is
 * fresh random bytes for every seal, never a counter.  Additional data
 * (AAD) binds a sealed blob to its identity so it cannot be moved: for a
 * block, crypto_block_aad() builds it from the cache id, the block index
 * and the block's content hash.  Plaintext is written to the caller's
 * buffer only after the tag verifies.
 *
 * Stateless; any thread.  Errors: -EBADMSG (authentication failed, or a
 * blob too short), -EIO (OpenSSL internal failure, detail logged at
 * debug level in category crypto), -EINVAL (bad length).
 */
#ifndef VMFERRY_CRYPTO_H
#define VMFERRY_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define CRYPTO_KEY_LEN	    32
#define CRYPTO_NONCE_LEN    12
#define CRYPTO_TAG_LEN	    16
#define CRYPTO_OVERHEAD	    (CRYPTO_NONCE_LEN + CRYPTO_TAG_LEN)
#define CRYPTO_CACHE_ID_LEN 16
/* "vmferry-block-v1" (16) | cache id (16) | blkno big-endian (8) | hash */
#define CRYPTO_BLOCK_AAD_LEN (16 + CRYPTO_CACHE_ID_LEN + 8 + VMF_HASH_LEN)
/* A wrapped data key: a sealed CRYPTO_KEY_LEN-byte key. */
#define CRYPTO_WRAPPED_KEY_LEN (CRYPTO_KEY_LEN + CRYPTO_OVERHEAD)
/* The most context crypto_wrap_key() binds. */
#define CRYPTO_WRAP_CTX_MAX 64

/* Fill buf with cryptographically secure random bytes (RAND_bytes).
 * Returns 0 or -EIO. */
int crypto_random(void *buf, size_t len);

/* Seal (in, len) into out, which has room for len + CRYPTO_OVERHEAD
 * bytes.  in and out must not overlap. */
int crypto_seal(const uint8_t key[CRYPTO_KEY_LEN], const void *aad,
		size_t aad_len, const void *in, size_t len, uint8_t *out);

/* Open (in, in_len) into out, which has room for in_len -
 * CRYPTO_OVERHEAD bytes.  On -EBADMSG out may hold garbage that the
 * caller must not use (it is zeroed before returning). */
int crypto_open(const uint8_t key[CRYPTO_KEY_LEN], const void *aad,
		size_t aad_len, const uint8_t *in, size_t in_len, void *out);

/* The same for a sealed value read in its three parts (nonce, then
 * ciphertext, then tag): open the len bytes of buf in place.  On
 * -EBADMSG buf is zeroed. */
int crypto_open_parts(const uint8_t key[CRYPTO_KEY_LEN], const void *aad,
		      size_t aad_len, const uint8_t nonce[CRYPTO_NONCE_LEN],
		      uint8_t tag[CRYPTO_TAG_LEN], void *buf, size_t len);

/* Build the AAD for block blkno of the cache identified by cache_id whose
 * content hashes to hash. */
void crypto_block_aad(const uint8_t cache_id[CRYPTO_CACHE_ID_LEN],
		      uint64_t blkno, const uint8_t hash[VMF_HASH_LEN],
		      uint8_t out[CRYPTO_BLOCK_AAD_LEN]);

/* Wrap data_key under user_key (AAD "vmferry-datakey-v1" | cache_id |
 * ctx): ctx (ctx_len bytes, may be 0) binds what is stored next to the
 * wrapped key (keys.c: its header), so editing it fails the unwrap. */
int crypto_wrap_key(const uint8_t user_key[CRYPTO_KEY_LEN],
		    const uint8_t cache_id[CRYPTO_CACHE_ID_LEN],
		    const void *ctx, size_t ctx_len,
		    const uint8_t data_key[CRYPTO_KEY_LEN],
		    uint8_t out[CRYPTO_WRAPPED_KEY_LEN]);
/* Unwrap; -EBADMSG for a wrong user key, another ctx or a tampered
 * blob.  -EINVAL if ctx_len is over CRYPTO_WRAP_CTX_MAX. */
int crypto_unwrap_key(const uint8_t user_key[CRYPTO_KEY_LEN],
		      const uint8_t cache_id[CRYPTO_CACHE_ID_LEN],
		      const void *ctx, size_t ctx_len,
		      const uint8_t in[CRYPTO_WRAPPED_KEY_LEN],
		      uint8_t data_key[CRYPTO_KEY_LEN]);

/* For OpenSSL callers outside this file (passphrase.c): log the thread's
 * OpenSSL error queue for what at debug level (category crypto), clear
 * it, and return -EIO. */
int crypto_openssl_fail(const char *what);

/* Clear key material (OPENSSL_cleanse). */
void crypto_cleanse(void *buf, size_t len);

#endif
