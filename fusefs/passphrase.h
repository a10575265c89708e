/* SPDX-License-Identifier: MIT */
/* Passphrases: read from the terminal or a file, turned into a key by
 * scrypt (OpenSSL's EVP_KDF "SCRYPT").
 *
 * The scrypt parameters and salt are not fixed here: they are recorded
 * with each wrapped key (keys.h), so they can change later; new keys get
 * passphrase_kdf_new()'s.  Parameters read back are checked against
 * limits first (passphrase_kdf_check()): a damaged or hostile file cannot
 * make a derivation take unbounded memory or time.
 *
 * Stateless; any thread, but the terminal prompt belongs to one thread
 * at start-up.  Every buffer that held a passphrase or a derived key is
 * cleansed here; the caller cleanses what it is given.
 */
#ifndef VMFERRY_PASSPHRASE_H
#define VMFERRY_PASSPHRASE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

/* Longest passphrase accepted, in bytes. */
#define PASSPHRASE_MAX	    1024
#define PASSPHRASE_SALT_LEN 16

/* Default cost: N = 2^16, r = 8, p = 1 (64 MiB, about 0.2 s on a 2 vCPU
 * machine in 2026; docs/client.md "Keys"). */
#define PASSPHRASE_LOG2_N 16
#define PASSPHRASE_R	  8
#define PASSPHRASE_P	  1

/* Limits for parameters read back: N from 2^10 to 2^22, r 1..32, p 1..16
 * and 128 * N * r * p at most 1 GiB. */
#define PASSPHRASE_LOG2_N_MIN 10
#define PASSPHRASE_LOG2_N_MAX 22
#define PASSPHRASE_R_MAX      32
#define PASSPHRASE_P_MAX      16
#define PASSPHRASE_MEM_MAX    (1ull << 30)

struct passphrase_kdf {
	uint8_t log2_n; /* scrypt N = 2^log2_n */
	uint32_t r, p;
	uint8_t salt[PASSPHRASE_SALT_LEN];
};

/* The default parameters with a fresh random salt.  0 or -EIO. */
int passphrase_kdf_new(struct passphrase_kdf *ret);

/* 0 if k is within the limits above, else -EINVAL. */
int passphrase_kdf_check(const struct passphrase_kdf *k);

/* Derive a CRYPTO_KEY_LEN-byte key from (pass, len) with scrypt under k.
 * Blocks for the derivation (CPU and 128 * N * r bytes of memory).
 * Returns 0, -EINVAL (k out of limits, or an empty passphrase), -ENOMEM
 * or -EIO (OpenSSL failed; detail at debug level, category crypto). */
int passphrase_derive(const char *pass, size_t len,
		      const struct passphrase_kdf *k,
		      uint8_t ret_key[CRYPTO_KEY_LEN]);

/* Read a passphrase from the first line of path (without its newline)
 * into buf (size bytes, not NUL-terminated) and set *ret_len.  Refuses,
 * as for key files, a file any group or other permission bit is set on
 * (-EPERM), one that is not a regular file (-EINVAL), an empty first line
 * (-ENODATA) and one longer than PASSPHRASE_MAX or size (-E2BIG). */
int passphrase_read_file(const char *path, char *buf, size_t size,
			 size_t *ret_len);

/* Ask on the controlling terminal (/dev/tty, echo off): print prompt,
 * read one line into buf (size bytes, not NUL-terminated), and if
 * again is not NULL, print it and read a second line, which must be the
 * same.  Returns 0; -ENXIO (no terminal); -ENODATA (empty); -E2BIG (too
 * long); -EKEYREJECTED (the two differ); -errno.  The terminal's settings
 * are restored, also when a signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT)
 * interrupts it, which is then raised again. */
int passphrase_ask(const char *prompt, const char *again, char *buf,
		   size_t size, size_t *ret_len);

#endif
