/* SPDX-License-Identifier: MIT */
/* Unit tests for fusefs/keys.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	uint8_t user[CRYPTO_KEY_LEN];
	uint8_t id[CRYPTO_CACHE_ID_LEN];
	uint8_t dk[CRYPTO_KEY_LEN];
};

static void fixture_init(struct fixture *f)
{
	int r;

	f->dir = tmpdir_new();
	f->idp = path_in(f->dir, "cache.id");
	f->dkp = path_in(f->dir, "data.key");
	r = crypto_random(f->user, sizeof(f->user));
	check_int(r, ==, 0);
	r = keys_data_open(f->dir, f->user, f->id, f->dk);
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
	uint8_t other[CRYPTO_KEY_LEN], id[CRYPTO_CACHE_ID_LEN];
	uint8_t dk[CRYPTO_KEY_LEN];
	int r;

	fixture_init(&f);
	check_uint(mode_of(f.idp), ==, 0600);
	check_uint(mode_of(f.dkp), ==, 0600);
	check_int(size_of(f.idp), ==, CRYPTO_CACHE_ID_LEN);
	check_int(size_of(f.dkp), ==, CRYPTO_WRAPPED_KEY_LEN);
	r = keys_data_open(f.dir, f.user, id, dk);
	check_int(r, ==, 0);
	check_mem(id, f.id, sizeof(id));
	check_mem(dk, f.dk, sizeof(dk));

	/* A wrong user key is told apart, and changes nothing. */
	memcpy(other, f.user, sizeof(other));
	other[7] ^= 4;
	memset(id, 0, sizeof(id));
	r = keys_data_open(f.dir, other, id, dk);
	check_int(r, ==, -EBADMSG);
	check(id[0] == 0 && memcmp(id, id + 1, sizeof(id) - 1) == 0);
	r = keys_data_open(f.dir, f.user, id, dk);
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
	r = keys_data_open(f.dir, f.user, id, dk);
	check_int(r, ==, -EIO);
	check_int(size_of(f.dkp), ==, CRYPTO_WRAPPED_KEY_LEN);
	/* cache.id of the wrong size. */
	write_str(f.idp, "short", 0600);
	r = keys_data_open(f.dir, f.user, id, dk);
	check_int(r, ==, -EIO);
	/* data.key of the wrong size. */
	r = write_file_atomic(f.idp, f.id, sizeof(f.id), 0600);
	check_int(r, ==, 0);
	r = keys_data_open(f.dir, f.user, id, dk);
	check_int(r, ==, 0);
	r = truncate(f.dkp, CRYPTO_WRAPPED_KEY_LEN - 1);
	check_int(r, ==, 0);
	r = keys_data_open(f.dir, f.user, id, dk);
	check_int(r, ==, -EBADMSG);
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
	r = read_file(witness, 100, &after, &len);
	check_int(r, ==, 0);
	check_uint(len, ==, CRYPTO_WRAPPED_KEY_LEN);
	check(before && after &&
	      memcmp(before, after, CRYPTO_WRAPPED_KEY_LEN) != 0);
	r = keys_destroy(f.dir);
	check_int(r, ==, 0); /* absent: not an error */

	r = keys_data_open(f.dir, f.user, id, dk);
	check_int(r, ==, 0);
	check(memcmp(id, f.id, sizeof(id)) != 0);
	check(memcmp(dk, f.dk, sizeof(dk)) != 0);
	fixture_fini(&f);
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
	return test_done();
}
