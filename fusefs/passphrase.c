/* SPDX-License-Identifier: MIT */
/* Passphrases: the terminal prompt, passphrase files, and scrypt through
 * OpenSSL's EVP_KDF.  See passphrase.h.
 *
 * Owns nothing between calls.  The prompt changes the terminal's echo
 * and, while it waits, the handlers and the thread's mask of four
 * terminating signals; all are restored before it returns.  OpenSSL failures become -EIO with
 * their detail at debug level (category crypto).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "cleanup.h"
#include "io.h"
#include "log.h"

#include "passphrase.h"

int passphrase_kdf_new(struct passphrase_kdf *ret)
{
	struct passphrase_kdf k = {
	    .log2_n = PASSPHRASE_LOG2_N,
	    .r = PASSPHRASE_R,
	    .p = PASSPHRASE_P,
	};
	int r = crypto_random(k.salt, sizeof(k.salt));

	if (r == 0)
		*ret = k;
	return r;
}

int passphrase_kdf_check(const struct passphrase_kdf *k)
{
	uint64_t mem;

	if (k->log2_n < PASSPHRASE_LOG2_N_MIN ||
	    k->log2_n > PASSPHRASE_LOG2_N_MAX || k->r < 1 ||
	    k->r > PASSPHRASE_R_MAX || k->p < 1 || k->p > PASSPHRASE_P_MAX)
		return -EINVAL;
	/* No overflow: 2^7 * 2^22 * 2^5 * 2^4 fits easily. */
	mem = 128ull * (1ull << k->log2_n) * k->r * k->p;
	return mem <= PASSPHRASE_MEM_MAX ? 0 : -EINVAL;
}

static void kdf_freep(EVP_KDF **k)
{
	EVP_KDF_free(*k);
}

static void kdf_ctx_freep(EVP_KDF_CTX **c)
{
	EVP_KDF_CTX_free(*c); /* clears the password it copied */
}

int passphrase_derive(const char *pass, size_t len,
		      const struct passphrase_kdf *k,
		      uint8_t ret_key[CRYPTO_KEY_LEN])
{
	_cleanup_(kdf_freep) EVP_KDF *kdf = NULL;
	_cleanup_(kdf_ctx_freep) EVP_KDF_CTX *ctx = NULL;
	uint64_t n = 1ull << k->log2_n;
	/* OpenSSL counts a little more than 128 * N * r * p; the limit
	 * that matters is passphrase_kdf_check()'s. */
	uint64_t maxmem = 2 * PASSPHRASE_MEM_MAX;
	uint32_t r = k->r, p = k->p;
	uint8_t key[CRYPTO_KEY_LEN];
	OSSL_PARAM params[7];
	int ok;

	if (len == 0 || len > PASSPHRASE_MAX || passphrase_kdf_check(k) < 0)
		return -EINVAL;
	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_SCRYPT, NULL);
	if (!kdf)
		return crypto_openssl_fail("scrypt fetch");
	ctx = EVP_KDF_CTX_new(kdf);
	if (!ctx)
		return crypto_openssl_fail("scrypt context");
	/* OSSL_PARAM takes non-const pointers; nothing writes through them. */
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
						      (char *)pass, len);
	params[1] = OSSL_PARAM_construct_octet_string(
	    OSSL_KDF_PARAM_SALT, (uint8_t *)k->salt, sizeof(k->salt));
	params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
	params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
	params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
	params[5] =
	    OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
	params[6] = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(ctx, key, sizeof(key), params);
	if (ok == 1)
		memcpy(ret_key, key, sizeof(key));
	OPENSSL_cleanse(key, sizeof(key));
	return ok == 1 ? 0 : crypto_openssl_fail("scrypt derive");
}

/* The first line of (buf, n) into out: 0, -ENODATA or -E2BIG. */
static int first_line(const char *buf, size_t n, char *out, size_t size,
		      size_t *ret_len)
{
	const char *nl = memchr(buf, '\n', n);
	size_t len = nl ? (size_t)(nl - buf) : n;

	if (len == 0)
		return -ENODATA;
	if (len > PASSPHRASE_MAX || len > size)
		return -E2BIG;
	memcpy(out, buf, len);
	*ret_len = len;
	return 0;
}

int passphrase_read_file(const char *path, char *buf, size_t size,
			 size_t *ret_len)
{
	/* A longest line, its newline, and one byte to see excess. */
	char tmp[PASSPHRASE_MAX + 2];
	ssize_t n;
	int r;

	/* As for key files: readable by others means known. */
	n = read_private(path, tmp, sizeof(tmp));
	if (n < 0)
		return (int)n;
	r = first_line(tmp, (size_t)n, buf, size, ret_len);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return r;
}

/* The signal that interrupted a prompt, raised again once the terminal
 * is restored.  Written by the handler, read by the prompting thread. */
static volatile sig_atomic_t passphrase_signal;

static void passphrase_on_signal(int sig)
{
	passphrase_signal = sig;
}

static const int passphrase_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define PASSPHRASE_NSIG (sizeof(passphrase_signals) / sizeof(int))

/* Read one line from the terminal into buf: 0, -ENODATA, -E2BIG,
 * -EINTR (a signal) or -errno.  The signals of passphrase_signals are
 * blocked but while waiting in ppoll() with wait_mask, so one that comes
 * at any moment (even before the first wait) is seen at the next check.
 * The line is read whole even when it is too long, so that nothing of
 * it is left for the next read. */
static int tty_read_line(int fd, const sigset_t *wait_mask, char *buf,
			 size_t size, size_t *ret_len)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	size_t n = 0;
	bool over = false;
	char c = 0;
	int r = 0;

	if (size > PASSPHRASE_MAX)
		size = PASSPHRASE_MAX;
	for (;;) {
		ssize_t k;

		if (passphrase_signal) {
			r = -EINTR;
			break;
		}
		if (ppoll(&p, 1, NULL, wait_mask) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		/* Readable: a whole line is there (canonical mode). */
		k = read(fd, &c, 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			break;
		}
		if (k == 0 || c == '\n' || c == '\r')
			break;
		if (n < size)
			buf[n++] = c;
		else
			over = true;
	}
	c = 0;
	if (r == 0 && over)
		r = -E2BIG;
	else if (r == 0 && n == 0)
		r = -ENODATA;
	if (r == 0)
		*ret_len = n;
	else
		OPENSSL_cleanse(buf, n);
	return r;
}

static void tty_say(int fd, const char *s)
{
	/* A prompt that cannot be shown still gets its answer read. */
	(void)full_write(fd, s, strlen(s));
}

int passphrase_ask(const char *prompt, const char *again, char *buf,
		   size_t size, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	struct sigaction sa, old_sa[PASSPHRASE_NSIG];
	sigset_t block, old_mask;
	struct termios old, quiet;
	char second[PASSPHRASE_MAX];
	size_t len = 0, len2 = 0;
	int r, sig;

	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -ENXIO;
	if (tcgetattr(fd, &old) < 0)
		return -ENXIO;
	passphrase_signal = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = passphrase_on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	for (size_t i = 0; i < PASSPHRASE_NSIG; i++)
		sigaddset(&block, passphrase_signals[i]);
	/* Blocked from here, delivered only inside tty_read_line()'s wait. */
	if (pthread_sigmask(SIG_BLOCK, &block, &old_mask) != 0)
		abort();
	/* A signal the process ignores stays ignored (nohup, a shell's
	 * background job). */
	for (size_t i = 0; i < PASSPHRASE_NSIG; i++)
		if (sigaction(passphrase_signals[i], NULL, &old_sa[i]) == 0 &&
		    old_sa[i].sa_handler != SIG_IGN)
			sigaction(passphrase_signals[i], &sa, NULL);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	r = tcsetattr(fd, TCSAFLUSH, &quiet) < 0 ? -errno : 0;
	if (r == 0) {
		tty_say(fd, prompt);
		r = tty_read_line(fd, &old_mask, buf, size, &len);
		tty_say(fd, "\n");
	}
	if (r == 0 && again) {
		tty_say(fd, again);
		r = tty_read_line(fd, &old_mask, second, sizeof(second), &len2);
		tty_say(fd, "\n");
		if (r == 0 && (len2 != len || CRYPTO_memcmp(buf, second, len)))
			r = -EKEYREJECTED;
		OPENSSL_cleanse(second, sizeof(second));
	}
	(void)tcsetattr(fd, TCSAFLUSH, &old); /* best effort: nothing else */
	for (size_t i = 0; i < PASSPHRASE_NSIG; i++)
		sigaction(passphrase_signals[i], &old_sa[i], NULL);
	sig = passphrase_signal;
	if (r < 0)
		OPENSSL_cleanse(buf, len);
	/* The terminal is restored: now a caught signal does what it
	 * would have done (a pending one is delivered by the unblocking). */
	if (sig)
		raise(sig);
	if (pthread_sigmask(SIG_SETMASK, &old_mask, NULL) != 0)
		abort();
	if (sig)
		return -EINTR;
	if (r == 0)
		*ret_len = len;
	return r;
}
