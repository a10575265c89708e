/* SPDX-License-Identifier: MIT */
/* Unit tests for fusefs/keys.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "io.h"

#include "keys.h"
#include "tap.h"

static char *tmpdir_new(void)
{
	char *d = strdup("/tmp/vmferry-test-keys.XXXXXX");

	if (!d || !mkdtemp(d))
		abort();
	return d;
}

static char *path_in(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}

static void write_str(const char *path, const char *s, mode_t mode)
{
	int r;

	r = write_file_atomic(path, s, strlen(s), mode);
	check_int(r, ==, 0);
	r = chmod(path, mode);
	check_int(r, ==, 0);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return (mode_t)-1;
	return st.st_mode & 07777;
}

static off_t size_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	return st.st_size;
}

static void test_user_create_load(void)
{
	_cleanup_free_ char *dir = tmpdir_new(), *sub = path_in(dir, "a/b");
	_cleanup_free_ char *path = path_in(dir, "a/b/key");
	_cleanup_free_ char *text = NULL;
	uint8_t k1[CRYPTO_KEY_LEN], k2[CRYPTO_KEY_LEN];
	bool created = false;
	int r;

	r = keys_user_load(path, false, k1, &created);
	check_int(r, ==, -ENOENT);
	r = keys_user_load(path, true, k1, &created);
	check_int(r, ==, 0);
	check(created);
	check_uint(mode_of(path), ==, 0600);
	check_uint(mode_of(sub), ==, 0700);
	r = read_file(path, 100, &text, NULL);
	check_int(r, ==, 0);
	check_uint(strlen(text), ==, 65);
	check(text[64] == '\n');
	r = keys_user_load(path, true, k2, &created);
	check_int(r, ==, 0);
	check(!created);
	check_mem(k1, k2, sizeof(k1));
	r = keys_user_load(path, false, k2, NULL);
	check_int(r, ==, 0);
	check_mem(k1, k2, sizeof(k1));
	check(rm_rf(dir) == 0);
}

static void test_user_bad_content(void)
{
	static const char *const bad[] = {
	    "",
	    "xyz\n",
	    /* 63 digits */
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef\n",
	    /* 65 digits */
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0\n",
	    /* a non-hex digit */
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg\n",
	    /* two newlines */
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\n",
	    " 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
	};
	_cleanup_free_ char *dir = tmpdir_new(), *path = path_in(dir, "key");
	uint8_t key[CRYPTO_KEY_LEN];
	int r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_str(path, bad[i], 0600);
		r = keys_user_load(path, true, key, NULL);
		if (!check_int(r, ==, -EBADMSG))
			printf("# content %zu\n", i);
	}
	/* Upper case and a missing final newline are accepted. */
	write_str(
	    path,
	    "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff",
	    0600);
	r = keys_user_load(path, false, key, NULL);
	check_int(r, ==, 0);
	check(key[0] == 0x00 && key[5] == 0x55 && key[10] == 0xaa &&
	      key[31] == 0xff);
	/* Not a regular file. */
	r = keys_user_load(dir, false, key, NULL);
	check_int(r, ==, -EINVAL);
	check(rm_rf(dir) == 0);
}

static void test_user_mode(void)
{
	static const mode_t refused[] = {0644, 0640, 0604, 0620, 0602, 0610};
	_cleanup_free_ char *dir = tmpdir_new(), *path = path_in(dir, "key");
	uint8_t key[CRYPTO_KEY_LEN];
	int r;

	r = keys_user_load(path, true, key, NULL);
	check_int(r, ==, 0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		r = chmod(path, refused[i]);
		check_int(r, ==, 0);
		r = keys_user_load(path, true, key, NULL);
		check_int(r, ==, -EPERM);
	}
	r = chmod(path, 0400);
	check_int(r, ==, 0);
	r = keys_user_load(path, true, key, NULL);
	check_int(r, ==, 0);
	check(rm_rf(dir) == 0);
}

/* A cache directory with its keys opened once under a random user key. */
struct fixture {
	char *dir, *idp, *dkp;
	struct keys_user user;
	uint8_t id[CRYPTO_CACHE_ID_LEN];
	uint8_t dk[CRYPTO_KEY_LEN];
};

static void fixture_init(struct fixture *f)
{
	int r;

	f->dir = tmpdir_new();
	f->idp = path_in(f->dir, "cache.id");
	f->dkp = path_in(f->dir, "data.key");
	memset(&f->user, 0, sizeof(f->user));
	f->user.kind = KEYS_KIND_FILE;
	r = crypto_random(f->user.key, sizeof(f->user.key));
	check_int(r, ==, 0);
	r = keys_data_open(f->dir, &f->user, f->id, f->dk);
	check_int(r, ==, 0);
}

static void fixture_fini(struct fixture *f)
{
	check(rm_rf(f->dir) == 0);
	free(f->dir);
	free(f->idp);
	free(f->dkp);
}

static void test_data_roundtrip(void)
{
	struct fixture f;
	struct keys_user other;
	uint8_t id[CRYPTO_CACHE_ID_LEN];
	uint8_t dk[CRYPTO_KEY_LEN];
	int r;

	fixture_init(&f);
	check_uint(mode_of(f.idp), ==, 0600);
	check_uint(mode_of(f.dkp), ==, 0600);
	check_int(size_of(f.idp), ==, CRYPTO_CACHE_ID_LEN);
	check_int(size_of(f.dkp), ==, 96);
	r = keys_data_open(f.dir, &f.user, id, dk);
	check_int(r, ==, 0);
	check_mem(id, f.id, sizeof(id));
	check_mem(dk, f.dk, sizeof(dk));

	/* A wrong user key is told apart, and changes nothing. */
	other = f.user;
	other.key[7] ^= 4;
	memset(id, 0, sizeof(id));
	r = keys_data_open(f.dir, &other, id, dk);
	check_int(r, ==, -EBADMSG);
	check(id[0] == 0 && memcmp(id, id + 1, sizeof(id) - 1) == 0);
	r = keys_data_open(f.dir, &f.user, id, dk);
	check_int(r, ==, 0);
	check_mem(dk, f.dk, sizeof(dk));
	fixture_fini(&f);
}

static void test_data_damaged(void)
{
	struct fixture f;
	uint8_t id[CRYPTO_CACHE_ID_LEN], dk[CRYPTO_KEY_LEN];
	int r;

	fixture_init(&f);
	/* data.key without cache.id: cannot be opened, is not replaced. */
	r = unlink(f.idp);
	check_int(r, ==, 0);
	r = keys_data_open(f.dir, &f.user, id, dk);
	check_int(r, ==, -EIO);
	check_int(size_of(f.dkp), ==, 96);
	/* cache.id of the wrong size. */
	write_str(f.idp, "short", 0600);
	r = keys_data_open(f.dir, &f.user, id, dk);
	check_int(r, ==, -EIO);
	/* data.key of the wrong size. */
	r = write_file_atomic(f.idp, f.id, sizeof(f.id), 0600);
	check_int(r, ==, 0);
	r = keys_data_open(f.dir, &f.user, id, dk);
	check_int(r, ==, 0);
	r = truncate(f.dkp, 95);
	check_int(r, ==, 0);
	r = keys_data_open(f.dir, &f.user, id, dk);
	check_int(r, ==, -EPROTO);
	fixture_fini(&f);
}

/* keys_destroy() overwrites data.key in place (a hard link made before
 * keeps the inode to look at), removes it, and the next open starts a
 * new identity: a new cache id and a new data key. */
static void test_destroy(void)
{
	struct fixture f;
	_cleanup_free_ char *witness = NULL;
	_cleanup_free_ char *before = NULL, *after = NULL;
	uint8_t id[CRYPTO_CACHE_ID_LEN], dk[CRYPTO_KEY_LEN];
	size_t len = 0;
	int r;

	fixture_init(&f);
	witness = path_in(f.dir, "witness");
	r = read_file(f.dkp, 100, &before, NULL);
	check_int(r, ==, 0);
	r = link(f.dkp, witness);
	check_int(r, ==, 0);
	r = keys_destroy(f.dir);
	check_int(r, ==, 0);
	check(access(f.dkp, F_OK) < 0 && errno == ENOENT);
	r = read_file(witness, 1000, &after, &len);
	check_int(r, ==, 0);
	check_uint(len, >=, 96);
	check(before && after && memcmp(before, after, 96) != 0);
	r = keys_destroy(f.dir);
	check_int(r, ==, 0); /* absent: not an error */

	r = keys_data_open(f.dir, &f.user, id, dk);
	check_int(r, ==, 0);
	check(memcmp(id, f.id, sizeof(id)) != 0);
	check(memcmp(dk, f.dk, sizeof(dk)) != 0);
	fixture_fini(&f);
}

/* scrypt through passphrase_derive() against an independent reference:
 *   python3 -c "import hashlib; print(hashlib.scrypt(
 *     b'correct horse battery staple', salt=bytes(range(16)), n=1024,
 *     r=8, p=1, dklen=32).hex())"
 * (Python's hashlib checks its scrypt against RFC 7914's vectors.) */
static void test_scrypt_vector(void)
{
	static const char pass[] = "correct horse battery staple";
	static const uint8_t want[32] = {
	    0x9a, 0x9f, 0x74, 0xcc, 0x44, 0x1d, 0xe5, 0x71, 0xa1, 0x8c, 0x4b,
	    0xf8, 0x58, 0x0a, 0xd5, 0x1f, 0x86, 0x74, 0x5d, 0x14, 0xb3, 0x90,
	    0x65, 0xad, 0x24, 0xad, 0x92, 0xfc, 0x05, 0xc9, 0x95, 0x15,
	};
	struct passphrase_kdf k = {.log2_n = 10, .r = 8, .p = 1};
	uint8_t key[CRYPTO_KEY_LEN];
	int r;

	for (size_t i = 0; i < sizeof(k.salt); i++)
		k.salt[i] = (uint8_t)i;
	r = passphrase_derive(pass, strlen(pass), &k, key);
	check_int(r, ==, 0);
	check_mem(key, want, sizeof(want));
	/* One more byte of passphrase, one more of salt: other keys. */
	r = passphrase_derive("correct horse battery staplf", strlen(pass), &k,
			      key);
	check_int(r, ==, 0);
	check(memcmp(key, want, sizeof(want)) != 0);
	k.salt[15] ^= 1;
	r = passphrase_derive(pass, strlen(pass), &k, key);
	check_int(r, ==, 0);
	check(memcmp(key, want, sizeof(want)) != 0);
	r = passphrase_derive(pass, 0, &k, key);
	check_int(r, ==, -EINVAL);
}

/* Parameters read back are bounded; the default's cost is measured. */
static void test_scrypt_limits(void)
{
	struct passphrase_kdf k;
	uint8_t key[CRYPTO_KEY_LEN];
	struct timespec a, b;
	double secs;
	int r;

	r = passphrase_kdf_new(&k);
	check_int(r, ==, 0);
	check_int(k.log2_n, ==, PASSPHRASE_LOG2_N);
	check_int(passphrase_kdf_check(&k), ==, 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	r = passphrase_derive("x", 1, &k, key);
	clock_gettime(CLOCK_MONOTONIC, &b);
	check_int(r, ==, 0);
	secs = (double)(b.tv_sec - a.tv_sec) +
	       (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	printf("# scrypt N=2^%u r=%u p=%u: %.3f s\n", k.log2_n, k.r, k.p, secs);
	check(secs < 5);
	k.log2_n = 23;
	check_int(passphrase_kdf_check(&k), ==, -EINVAL);
	r = passphrase_derive("x", 1, &k, key);
	check_int(r, ==, -EINVAL);
	k.log2_n = 9;
	check_int(passphrase_kdf_check(&k), ==, -EINVAL);
	k.log2_n = 22; /* 2^22 * 128 * 8 = 4 GiB: over the memory cap */
	check_int(passphrase_kdf_check(&k), ==, -EINVAL);
	k.log2_n = 16;
	k.r = 0;
	check_int(passphrase_kdf_check(&k), ==, -EINVAL);
	k.r = 8;
	k.p = 17;
	check_int(passphrase_kdf_check(&k), ==, -EINVAL);
}

static void test_passphrase_file(void)
{
	_cleanup_free_ char *dir = tmpdir_new(), *path = path_in(dir, "pass");
	char buf[PASSPHRASE_MAX], big[PASSPHRASE_MAX + 2];
	size_t len = 0;
	int r;

	write_str(path, "first line\nsecond\n", 0600);
	r = passphrase_read_file(path, buf, sizeof(buf), &len);
	check_int(r, ==, 0);
	check_uint(len, ==, 10);
	check(memcmp(buf, "first line", 10) == 0);
	write_str(path, "no newline", 0400);
	r = passphrase_read_file(path, buf, sizeof(buf), &len);
	check_int(r, ==, 0);
	check_uint(len, ==, 10);
	for (mode_t m = 0640; m; m = m == 0640 ? 0604 : m == 0604 ? 0610 : 0) {
		write_str(path, "secret\n", m);
		r = passphrase_read_file(path, buf, sizeof(buf), &len);
		check_int(r, ==, -EPERM);
	}
	write_str(path, "\nsecond\n", 0600);
	r = passphrase_read_file(path, buf, sizeof(buf), &len);
	check_int(r, ==, -ENODATA);
	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	write_str(path, big, 0600); /* PASSPHRASE_MAX + 1 bytes */
	r = passphrase_read_file(path, buf, sizeof(buf), &len);
	check_int(r, ==, -E2BIG);
	big[PASSPHRASE_MAX] = '\n'; /* exactly the longest */
	write_str(path, big, 0600);
	r = passphrase_read_file(path, buf, sizeof(buf), &len);
	check_int(r, ==, 0);
	check_uint(len, ==, PASSPHRASE_MAX);
	r = passphrase_read_file(dir, buf, sizeof(buf), &len);
	check_int(r, ==, -EINVAL);
	check(rm_rf(dir) == 0);
}

static void user_pass(struct keys_user *u, const char *pass)
{
	memset(u, 0, sizeof(*u));
	u->kind = KEYS_KIND_PASSPHRASE;
	u->pass_len = strlen(pass);
	memcpy(u->pass, pass, u->pass_len);
}

static void user_file(struct keys_user *u)
{
	memset(u, 0, sizeof(*u));
	u->kind = KEYS_KIND_FILE;
	check_int(crypto_random(u->key, sizeof(u->key)), ==, 0);
}

/* Read a whole small file (the test's own helper: frees nothing). */
static char *slurp(const char *path, size_t *len)
{
	char *buf = NULL;

	check_int(read_file(path, 1 << 20, &buf, len), ==, 0);
	return buf;
}

/* A passphrase copy: data.key records the kind and the parameters; a
 * wrong passphrase or the other kind of key is told apart, and neither
 * writes anything. */
static void test_data_passphrase(void)
{
	_cleanup_free_ char *dir = tmpdir_new(),
			    *dkp = path_in(dir, "data.key");
	_cleanup_free_ char *idp = path_in(dir, "cache.id");
	_cleanup_free_ char *before = NULL, *after = NULL, *id_before = NULL;
	_cleanup_free_ char *id_after = NULL;
	struct keys_user good, bad, file;
	uint8_t id[CRYPTO_CACHE_ID_LEN], dk[CRYPTO_KEY_LEN];
	uint8_t id2[CRYPTO_CACHE_ID_LEN], dk2[CRYPTO_KEY_LEN];
	enum keys_kind kind = 0;
	size_t len = 0, len2 = 0;
	int r;

	user_pass(&good, "a passphrase");
	user_pass(&bad, "a passphrasf");
	user_file(&file);
	r = keys_data_kind(dir, &kind);
	check_int(r, ==, -ENOENT);
	r = keys_data_open(dir, &good, id, dk);
	check_int(r, ==, 0);
	r = keys_data_kind(dir, &kind);
	check_int(r, ==, 0);
	check_int(kind, ==, KEYS_KIND_PASSPHRASE);
	before = slurp(dkp, &len);
	id_before = slurp(idp, NULL);
	check_uint(len, ==, 96);
	check(memcmp(before, "VMFDKEY2", 8) == 0);
	check_int(before[8], ==, KEYS_KIND_PASSPHRASE);
	check_int(before[9], ==, 1);
	check_int(before[10], ==, PASSPHRASE_LOG2_N);

	r = keys_data_open(dir, &bad, id2, dk2);
	check_int(r, ==, -EBADMSG);
	r = keys_data_open(dir, &file, id2, dk2);
	check_int(r, ==, -EKEYREJECTED);
	after = slurp(dkp, &len2);
	id_after = slurp(idp, NULL);
	check(len2 == len && memcmp(before, after, len) == 0);
	check(memcmp(id_before, id_after, CRYPTO_CACHE_ID_LEN) == 0);
	r = keys_data_open(dir, &good, id2, dk2);
	check_int(r, ==, 0);
	check_mem(id2, id, sizeof(id));
	check_mem(dk2, dk, sizeof(dk));
	keys_user_fini(&good);
	check(good.pass_len == 0 && good.pass[0] == 0);
	keys_user_fini(&bad);
	keys_user_fini(&file);
	check(rm_rf(dir) == 0);
}

/* Editing data.key's header is detected: a parameter out of limits or
 * an unknown kind cannot be read (-EPROTO); a salt or cost changed within
 * limits fails the unwrap (-EBADMSG; the header is bound as AAD). */
static void test_data_header_tamper(void)
{
	_cleanup_free_ char *dir = tmpdir_new(),
			    *dkp = path_in(dir, "data.key");
	_cleanup_free_ char *orig = NULL;
	struct keys_user u;
	uint8_t id[CRYPTO_CACHE_ID_LEN], dk[CRYPTO_KEY_LEN];
	static const struct {
		size_t off;
		uint8_t xor ;
		int want;
	} cases[] = {
	    {0, 1, -EPROTO},	 /* magic */
	    {8, 3, -EPROTO},	 /* kind 2 -> 1 with scrypt parameters */
	    {8, 1, -EPROTO},	 /* kind 3 */
	    {10, 0x20, -EPROTO}, /* log2 N 16 -> 48 */
	    {11, 1, -EPROTO},	 /* reserved */
	    {20, 1, -EBADMSG},	 /* salt */
	    {10, 1, -EBADMSG},	 /* log2 N 16 -> 17: in limits, another key */
	    {95, 1, -EBADMSG},	 /* tag */
	};
	size_t len = 0;
	int r;

	user_pass(&u, "tamper");
	r = keys_data_open(dir, &u, id, dk);
	check_int(r, ==, 0);
	orig = slurp(dkp, &len);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[96];

		memcpy(buf, orig, sizeof(buf));
		buf[cases[i].off] ^= (char)cases[i].xor ;
		r = write_file_atomic(dkp, buf, sizeof(buf), 0600);
		check_int(r, ==, 0);
		r = keys_data_open(dir, &u, id, dk);
		if (!check_int(r, ==, cases[i].want))
			printf("# case %zu\n", i);
	}
	keys_user_fini(&u);
	check(rm_rf(dir) == 0);
}

/* A data.key of the first format (60 bytes, a bare wrapped key) opens
 * with its key file. */
static void test_data_legacy(void)
{
	_cleanup_free_ char *dir = tmpdir_new(),
			    *dkp = path_in(dir, "data.key");
	_cleanup_free_ char *idp = path_in(dir, "cache.id");
	uint8_t id[CRYPTO_CACHE_ID_LEN], dk[CRYPTO_KEY_LEN];
	uint8_t wrapped[CRYPTO_WRAPPED_KEY_LEN];
	uint8_t id2[CRYPTO_CACHE_ID_LEN], dk2[CRYPTO_KEY_LEN];
	enum keys_kind kind = 0;
	struct keys_user u, p;
	int r;

	user_file(&u);
	user_pass(&p, "legacy");
	check_int(crypto_random(id, sizeof(id)), ==, 0);
	check_int(crypto_random(dk, sizeof(dk)), ==, 0);
	r = crypto_wrap_key(u.key, id, NULL, 0, dk, wrapped);
	check_int(r, ==, 0);
	check_int(write_file_atomic(idp, id, sizeof(id), 0600), ==, 0);
	check_int(write_file_atomic(dkp, wrapped, sizeof(wrapped), 0600), ==,
		  0);
	r = keys_data_kind(dir, &kind);
	check_int(r, ==, 0);
	check_int(kind, ==, KEYS_KIND_FILE);
	r = keys_data_open(dir, &u, id2, dk2);
	check_int(r, ==, 0);
	check_mem(dk2, dk, sizeof(dk));
	r = keys_data_open(dir, &p, id2, dk2);
	check_int(r, ==, -EKEYREJECTED);
	/* Rekey writes the current format. */
	r = keys_rekey(dir, &u, &u);
	check_int(r, ==, 0);
	check_int(size_of(dkp), ==, 96);
	r = keys_data_open(dir, &u, id2, dk2);
	check_int(r, ==, 0);
	check_mem(dk2, dk, sizeof(dk));
	keys_user_fini(&u);
	keys_user_fini(&p);
	check(rm_rf(dir) == 0);
}

/* Rekey keeps the cache id and the data key and changes only data.key;
 * the old key stops opening it; a wrong old key changes nothing. */
static void test_rekey(void)
{
	_cleanup_free_ char *dir = tmpdir_new(),
			    *dkp = path_in(dir, "data.key");
	_cleanup_free_ char *b1 = NULL, *b2 = NULL, *b3 = NULL, *b4 = NULL;
	struct keys_user k1, p1, p2, wrong;
	uint8_t id[CRYPTO_CACHE_ID_LEN], dk[CRYPTO_KEY_LEN];
	uint8_t id2[CRYPTO_CACHE_ID_LEN], dk2[CRYPTO_KEY_LEN];
	size_t l1, l2, l3, l4;
	int r;

	user_file(&k1);
	user_pass(&p1, "first passphrase");
	user_pass(&p2, "second passphrase");
	user_pass(&wrong, "not it");
	r = keys_rekey(dir, &k1, &p1);
	check_int(r, ==, -ENOENT); /* no copy: nothing created */
	check(access(dkp, F_OK) < 0);
	r = keys_data_open(dir, &k1, id, dk);
	check_int(r, ==, 0);
	b1 = slurp(dkp, &l1);

	/* key file -> passphrase */
	r = keys_rekey(dir, &k1, &p1);
	check_int(r, ==, 0);
	b2 = slurp(dkp, &l2);
	check(l2 == 96 && memcmp(b1, b2, 96) != 0);
	r = keys_data_open(dir, &k1, id2, dk2);
	check_int(r, ==, -EKEYREJECTED);
	r = keys_data_open(dir, &p1, id2, dk2);
	check_int(r, ==, 0);
	check_mem(id2, id, sizeof(id));
	check_mem(dk2, dk, sizeof(dk));

	/* A wrong old passphrase: refused, data.key unchanged. */
	r = keys_rekey(dir, &wrong, &p2);
	check_int(r, ==, -EBADMSG);
	b3 = slurp(dkp, &l3);
	check(l3 == l2 && memcmp(b2, b3, l2) == 0);

	/* passphrase -> passphrase: a new salt, the old one refused. */
	r = keys_rekey(dir, &p1, &p2);
	check_int(r, ==, 0);
	b4 = slurp(dkp, &l4);
	check(memcmp(b3 + 20, b4 + 20, 16) != 0);
	r = keys_data_open(dir, &p1, id2, dk2);
	check_int(r, ==, -EBADMSG);
	r = keys_data_open(dir, &p2, id2, dk2);
	check_int(r, ==, 0);
	check_mem(id2, id, sizeof(id));
	check_mem(dk2, dk, sizeof(dk));
	keys_user_fini(&k1);
	keys_user_fini(&p1);
	keys_user_fini(&p2);
	keys_user_fini(&wrong);
	check(rm_rf(dir) == 0);
}

int main(void)
{
	TEST(test_user_create_load(),
	     "user key created 0600 in 0700 dirs, then loaded");
	TEST(test_user_bad_content(), "malformed user key file rejected");
	TEST(test_user_mode(), "user key readable by group or others refused");
	TEST(test_data_roundtrip(),
	     "data key round trip; wrong user key is -EBADMSG");
	TEST(test_data_damaged(), "half-present or damaged key files rejected");
	TEST(test_destroy(),
	     "destroy overwrites data.key; reopen makes a new identity");
	TEST(test_scrypt_vector(), "scrypt matches an independent reference");
	TEST(test_scrypt_limits(), "scrypt parameters bounded; default timed");
	TEST(test_passphrase_file(),
	     "passphrase file: first line, 0600, empty and long refused");
	TEST(test_data_passphrase(),
	     "passphrase copy; wrong passphrase or kind changes nothing");
	TEST(test_data_header_tamper(), "data.key header edits are detected");
	TEST(test_data_legacy(), "first-format data.key still opens");
	TEST(test_rekey(), "rekey keeps the data key; the old key is refused");
	return test_done();
}
