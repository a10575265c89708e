/* SPDX-License-Identifier: MIT */
/* AES-256-GCM seal/open of cache blocks and data-key wrapping.
 *
 * Owns nothing but one process-wide cipher object: OpenSSL 3 looks a
 * cipher up in its provider store (under a lock) on every init when it
 * is given EVP_aes_256_gcm(), so it is fetched once (pthread_once) and
 * kept until exit.  Every call uses its own EVP_CIPHER_CTX and key
 * schedule: about 1 us per open and 2 us per seal (with its nonce)
 * against about 20 us to process a 64 KiB block, so a cached context
 * is not worth its state (tests/unit/test-crypto.c prints throughput).
 *
 * Any thread.  OpenSSL failures become -EIO; their detail is logged at
 * debug level (category crypto) and the thread's error queue is cleared.
 */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cleanup.h"
#include "log.h"

#include "crypto.h"

#define CRYPTO_BLOCK_AAD_MAGIC	 "vmferry-block-v1"
#define CRYPTO_DATAKEY_AAD_MAGIC "vmferry-datakey-v1"

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *crypto_gcm; /* set once, never freed (process lifetime) */

static void crypto_fetch_cipher(void)
{
	crypto_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *crypto_cipher(void)
{
	if (pthread_once(&crypto_once, crypto_fetch_cipher) != 0)
		abort();
	/* A provider without AES-GCM falls back to the implicit fetch. */
	return crypto_gcm ? crypto_gcm : EVP_aes_256_gcm();
}

int crypto_openssl_fail(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (log_debug_enabled(LOG_CAT_CRYPTO)) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_debug(LOG_CAT_CRYPTO, "crypto %s: %s", what,
			  e ? buf : "failed");
	}
	ERR_clear_error();
	return -EIO;
}

static void crypto_ctx_freep(EVP_CIPHER_CTX **ctx)
{
	EVP_CIPHER_CTX_free(*ctx); /* NULL is a no-op; cleanses the key */
}

int crypto_random(void *buf, size_t len)
{
	if (len > INT_MAX)
		return -EINVAL;
	if (RAND_bytes(buf, (int)len) != 1)
		return crypto_openssl_fail("random bytes");
	return 0;
}

int crypto_seal(const uint8_t key[CRYPTO_KEY_LEN], const void *aad,
		size_t aad_len, const void *in, size_t len, uint8_t *out)
{
	_cleanup_(crypto_ctx_freep) EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *nonce = out, *ct = out + CRYPTO_NONCE_LEN, *tag;
	int n, r;

	if (len > INT_MAX - CRYPTO_OVERHEAD || aad_len > INT_MAX)
		return -EINVAL;
	tag = ct + len;
	r = crypto_random(nonce, CRYPTO_NONCE_LEN);
	if (r < 0)
		return r;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return crypto_openssl_fail("seal: new context");
	/* The default GCM IV length is 12 bytes, CRYPTO_NONCE_LEN. */
	if (EVP_EncryptInit_ex(ctx, crypto_cipher(), NULL, key, nonce) != 1 ||
	    (aad_len > 0 &&
	     EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) ||
	    EVP_EncryptUpdate(ctx, ct, &n, in, (int)len) != 1 ||
	    EVP_EncryptFinal_ex(ctx, ct + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_TAG_LEN,
				tag) != 1)
		return crypto_openssl_fail("seal");
	return 0;
}

/* AES-256-GCM open of ct (len bytes) into out (which may be ct). */
static int gcm_open(const uint8_t key[CRYPTO_KEY_LEN], const void *aad,
		    size_t aad_len, const uint8_t nonce[CRYPTO_NONCE_LEN],
		    uint8_t tag[CRYPTO_TAG_LEN], const uint8_t *ct, size_t len,
		    void *out)
{
	_cleanup_(crypto_ctx_freep) EVP_CIPHER_CTX *ctx = NULL;
	int n;

	if (len > INT_MAX || aad_len > INT_MAX)
		return -EINVAL;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return crypto_openssl_fail("open: new context");
	if (EVP_DecryptInit_ex(ctx, crypto_cipher(), NULL, key, nonce) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPTO_TAG_LEN,
				tag) != 1 ||
	    (aad_len > 0 &&
	     EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1))
		return crypto_openssl_fail("open");
	/* Only the final step checks the tag; until it passes, out holds
	 * unauthenticated plaintext, which must not survive a failure. */
	if (EVP_DecryptUpdate(ctx, out, &n, ct, (int)len) != 1) {
		OPENSSL_cleanse(out, len);
		return crypto_openssl_fail("open");
	}
	if (EVP_DecryptFinal_ex(ctx, (uint8_t *)out + n, &n) != 1) {
		OPENSSL_cleanse(out, len);
		ERR_clear_error();
		log_debug(LOG_CAT_CRYPTO, "crypto open: tag mismatch");
		return -EBADMSG;
	}
	return 0;
}

int crypto_open(const uint8_t key[CRYPTO_KEY_LEN], const void *aad,
		size_t aad_len, const uint8_t *in, size_t in_len, void *out)
{
	uint8_t tag[CRYPTO_TAG_LEN];
	size_t len;

	if (in_len < CRYPTO_OVERHEAD)
		return -EBADMSG;
	if (in_len > INT_MAX)
		return -EINVAL;
	len = in_len - CRYPTO_OVERHEAD;
	/* OpenSSL's SET_TAG takes a non-const pointer: copy it. */
	memcpy(tag, in + CRYPTO_NONCE_LEN + len, CRYPTO_TAG_LEN);
	return gcm_open(key, aad, aad_len, in, tag, in + CRYPTO_NONCE_LEN, len,
			out);
}

int crypto_open_parts(const uint8_t key[CRYPTO_KEY_LEN], const void *aad,
		      size_t aad_len, const uint8_t nonce[CRYPTO_NONCE_LEN],
		      uint8_t tag[CRYPTO_TAG_LEN], void *buf, size_t len)
{
	return gcm_open(key, aad, aad_len, nonce, tag, buf, len, buf);
}

void crypto_block_aad(const uint8_t cache_id[CRYPTO_CACHE_ID_LEN],
		      uint64_t blkno, const uint8_t hash[VMF_HASH_LEN],
		      uint8_t out[CRYPTO_BLOCK_AAD_LEN])
{
	uint64_t be = htobe64(blkno);
	uint8_t *p = out;

	static_assert(sizeof(CRYPTO_BLOCK_AAD_MAGIC) - 1 == 16,
		      "magic is 16 bytes (crypto.h)");

	memcpy(p, CRYPTO_BLOCK_AAD_MAGIC, 16);
	p += 16;
	memcpy(p, cache_id, CRYPTO_CACHE_ID_LEN);
	p += CRYPTO_CACHE_ID_LEN;
	memcpy(p, &be, 8);
	p += 8;
	memcpy(p, hash, VMF_HASH_LEN);
}

/* "vmferry-datakey-v1" | cache_id | ctx */
#define CRYPTO_DATAKEY_AAD_MAX                                        \
	(sizeof(CRYPTO_DATAKEY_AAD_MAGIC) - 1 + CRYPTO_CACHE_ID_LEN + \
	 CRYPTO_WRAP_CTX_MAX)

static size_t crypto_datakey_aad(const uint8_t cache_id[CRYPTO_CACHE_ID_LEN],
				 const void *ctx, size_t ctx_len,
				 uint8_t out[CRYPTO_DATAKEY_AAD_MAX])
{
	size_t m = sizeof(CRYPTO_DATAKEY_AAD_MAGIC) - 1;

	memcpy(out, CRYPTO_DATAKEY_AAD_MAGIC, m);
	memcpy(out + m, cache_id, CRYPTO_CACHE_ID_LEN);
	if (ctx_len)
		memcpy(out + m + CRYPTO_CACHE_ID_LEN, ctx, ctx_len);
	return m + CRYPTO_CACHE_ID_LEN + ctx_len;
}

int crypto_wrap_key(const uint8_t user_key[CRYPTO_KEY_LEN],
		    const uint8_t cache_id[CRYPTO_CACHE_ID_LEN],
		    const void *ctx, size_t ctx_len,
		    const uint8_t data_key[CRYPTO_KEY_LEN],
		    uint8_t out[CRYPTO_WRAPPED_KEY_LEN])
{
	uint8_t aad[CRYPTO_DATAKEY_AAD_MAX];
	size_t n;

	if (ctx_len > CRYPTO_WRAP_CTX_MAX)
		return -EINVAL;
	n = crypto_datakey_aad(cache_id, ctx, ctx_len, aad);
	return crypto_seal(user_key, aad, n, data_key, CRYPTO_KEY_LEN, out);
}

int crypto_unwrap_key(const uint8_t user_key[CRYPTO_KEY_LEN],
		      const uint8_t cache_id[CRYPTO_CACHE_ID_LEN],
		      const void *ctx, size_t ctx_len,
		      const uint8_t in[CRYPTO_WRAPPED_KEY_LEN],
		      uint8_t data_key[CRYPTO_KEY_LEN])
{
	uint8_t aad[CRYPTO_DATAKEY_AAD_MAX];
	size_t n;

	if (ctx_len > CRYPTO_WRAP_CTX_MAX)
		return -EINVAL;
	n = crypto_datakey_aad(cache_id, ctx, ctx_len, aad);
	return crypto_open(user_key, aad, n, in, CRYPTO_WRAPPED_KEY_LEN,
			   data_key);
}

void crypto_cleanse(void *buf, size_t len)
{
	OPENSSL_cleanse(buf, len);
}
