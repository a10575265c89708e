/* SPDX-License-Identifier: MIT */
/* Unit tests for server/auth.c: token format and hashing, the
 * Authorization header, grants, the tokens.json file and its reload. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "auth.h"
#include "io.h"
#include "tap.h"

static void test_token_new(void)
{
	int r;
	char *a = NULL, *b = NULL;
	size_t plen = strlen(AUTH_TOKEN_PREFIX);

	r = auth_token_new(&a);
	check_int(r, ==, 0);
	r = auth_token_new(&b);
	check_int(r, ==, 0);
	if (!a || !b)
		return;
	check(strncmp(a, AUTH_TOKEN_PREFIX, plen) == 0);
	/* 32 random bytes in unpadded base64url: 43 characters */
	check_uint(strlen(a), ==, plen + 43);
	check_uint(strspn(a + plen, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
				    "opqrstuvwxyz0123456789-_"),
		   ==, 43);
	check(strcmp(a, b) != 0);
	free(a);
	free(b);
}

static void test_token_hash(void)
{
	const char *tok = "vmf_example-token_1";
	uint8_t got[VMF_HASH_LEN], want[VMF_HASH_LEN];
	unsigned int n = 0;

	/* The reference comes from OpenSSL directly, not from hash.c. */
	check(EVP_Digest(tok, strlen(tok), want, &n, EVP_sha256(), NULL));
	auth_token_hash(tok, got);
	check_mem(got, want, VMF_HASH_LEN);
	auth_token_hash("vmf_example-token_2", got);
	check(memcmp(got, want, VMF_HASH_LEN) != 0);
}

static void test_bearer(void)
{
	int r;
	const char *t = NULL;
	char big[VMF_TOKEN_MAX + 16];

	r = auth_parse_bearer("Bearer abc", &t);
	check_int(r, ==, 0);
	check(t && strcmp(t, "abc") == 0);
	r = auth_parse_bearer("bearer abc", &t);
	check_int(r, ==, 0);
	r = auth_parse_bearer("BEARER  a-b.c_d~e+f/g==", &t);
	check_int(r, ==, 0);
	check(t && strcmp(t, "a-b.c_d~e+f/g==") == 0);

	r = auth_parse_bearer(NULL, &t);
	check_int(r, ==, -EINVAL);
	r = auth_parse_bearer("", &t);
	check_int(r, ==, -EINVAL);
	r = auth_parse_bearer("Bearer", &t);
	check_int(r, ==, -EINVAL);
	r = auth_parse_bearer("Bearer ", &t);
	check_int(r, ==, -EINVAL);
	r = auth_parse_bearer("Basic dXNlcjpwYXNz", &t);
	check_int(r, ==, -EINVAL);
	r = auth_parse_bearer("Bearerabc", &t);
	check_int(r, ==, -EINVAL);
	r = auth_parse_bearer("Bearer a b", &t);
	check_int(r, ==, -EINVAL);
	r = auth_parse_bearer("Bearer a=b", &t);
	check_int(r, ==, -EINVAL);
	r = auth_parse_bearer("Bearer abc ", &t);
	check_int(r, ==, -EINVAL);
	r = auth_parse_bearer("Bearer a\"b", &t);
	check_int(r, ==, -EINVAL);
	r = auth_parse_bearer("Bearer a\tb", &t);
	check_int(r, ==, -EINVAL);

	memcpy(big, "Bearer ", 7);
	memset(big + 7, 'x', VMF_TOKEN_MAX);
	big[7 + VMF_TOKEN_MAX] = '\0';
	r = auth_parse_bearer(big, &t);
	check_int(r, ==, 0);
	big[7 + VMF_TOKEN_MAX] = 'x';
	big[8 + VMF_TOKEN_MAX] = '\0';
	r = auth_parse_bearer(big, &t);
	check_int(r, ==, -EINVAL);
}

/* A db of three tokens: a reader of "alpha", a writer of "beta" and of
 * every image's reads, and an admin. */
static struct auth_db *make_db(uint8_t hashes[3][VMF_HASH_LEN],
			       char ids[3][AUTH_ID_LEN + 1])
{
	int r;
	static const char *const rd_alpha[] = {"alpha"};
	static const char *const wr_beta[] = {"beta"};
	static const char *const rd_all[] = {AUTH_ALL_IMAGES};
	struct auth_grants reader = {.read = rd_alpha, .nread = 1};
	struct auth_grants writer = {
	    .read = rd_all, .nread = 1, .write = wr_beta, .nwrite = 1};
	struct auth_grants admin = {.admin = true};
	struct auth_db *db = auth_db_new();
	const char *id;

	auth_token_hash("secret-reader", hashes[0]);
	auth_token_hash("secret-writer", hashes[1]);
	auth_token_hash("secret-admin", hashes[2]);
	r = auth_db_add(db, "reader", &reader, hashes[0], 1, &id);
	check_int(r, ==, 0);
	snprintf(ids[0], AUTH_ID_LEN + 1, "%s", r == 0 ? id : "");
	r = auth_db_add(db, "writer", &writer, hashes[1], 2, &id);
	check_int(r, ==, 0);
	snprintf(ids[1], AUTH_ID_LEN + 1, "%s", r == 0 ? id : "");
	r = auth_db_add(db, "admin", &admin, hashes[2], 3, &id);
	check_int(r, ==, 0);
	snprintf(ids[2], AUTH_ID_LEN + 1, "%s", r == 0 ? id : "");
	return db;
}

static void test_grants(void)
{
	uint8_t h[3][VMF_HASH_LEN], unknown[VMF_HASH_LEN];
	char ids[3][AUTH_ID_LEN + 1];
	struct auth_db *db = make_db(h, ids);
	const struct auth_token *r = auth_db_find(db, h[0]);
	const struct auth_token *w = auth_db_find(db, h[1]);
	const struct auth_token *a = auth_db_find(db, h[2]);

	auth_token_hash("nobody", unknown);
	check(auth_db_find(db, unknown) == NULL);
	check(r && w && a);
	if (!r || !w || !a)
		goto out;
	check(strcmp(r->label, "reader") == 0);
	check(strcmp(r->id, ids[0]) == 0 && strlen(r->id) == AUTH_ID_LEN);

	check(auth_can_read(r, "alpha"));
	check(!auth_can_read(r, "beta"));
	check(!auth_can_read(r, "alpha2")); /* names match whole */
	check(!auth_can_write(r, "alpha"));
	check(!auth_can_write_any(r));

	check(auth_can_read(w, "anything")); /* read "*" */
	check(auth_can_write(w, "beta"));
	check(auth_can_read(w, "beta"));
	check(!auth_can_write(w, "alpha"));
	check(auth_can_write_any(w));

	check(auth_can_read(a, "x") && auth_can_write(a, "y"));
	check(auth_can_write_any(a));
out:
	auth_db_unref(db);
}

static void test_write_implies_read(void)
{
	int r;
	static const char *const wr[] = {"gamma"};
	struct auth_grants g = {.write = wr, .nwrite = 1};
	struct auth_db *db = auth_db_new();
	uint8_t h[VMF_HASH_LEN];
	const char *id;

	auth_token_hash("w", h);
	r = auth_db_add(db, "w", &g, h, 0, &id);
	check_int(r, ==, 0);
	check(auth_can_read(&db->tokens[0], "gamma"));
	check(!auth_can_read(&db->tokens[0], "delta"));
	auth_db_unref(db);
}

static void test_bad_grants(void)
{
	int r;
	static const char *const bad_names[] = {"../x", "a/b", ".hidden", ""};
	struct auth_db *db = auth_db_new();
	uint8_t h[VMF_HASH_LEN] = {1};
	const char *id;

	for (size_t i = 0; i < 4; i++) {
		struct auth_grants g = {.read = &bad_names[i], .nread = 1};

		r = auth_db_add(db, "x", &g, h, 0, &id);
		check_int(r, ==, -EINVAL);
	}
	r = auth_db_add(db, "", &(struct auth_grants){.admin = true}, h, 0,
			&id);
	check_int(r, ==, -EINVAL);
	r = auth_db_add(db, "a\nb", &(struct auth_grants){.admin = true}, h, 0,
			&id);
	check_int(r, ==, -EINVAL);
	check_uint(db->n, ==, 0);
	check(auth_grant_valid("*") && auth_grant_valid("ok-name.1"));
	auth_db_unref(db);
}

/* DIR/tokens.json in a new temporary DIR; rm_tmp() removes both. */
static char *tmp_path(void)
{
	char *dir = strdup("/tmp/test-auth.XXXXXX"), *p = NULL;

	if (!mkdtemp(dir) || asprintf(&p, "%s/tokens.json", dir) < 0)
		abort();
	free(dir);
	return p;
}

static void rm_tmp(char *path)
{
	(void)unlink(path);
	*strrchr(path, '/') = '\0';
	(void)rmdir(path);
	free(path);
}

static void test_file_roundtrip(void)
{
	int r;
	uint8_t h[3][VMF_HASH_LEN];
	char ids[3][AUTH_ID_LEN + 1];
	struct auth_db *db = make_db(h, ids), *back = NULL;
	char *path = tmp_path(), *text = NULL;
	char grants[256];

	r = auth_db_save(db, path);
	check_int(r, ==, 0);
	/* Only hashes reach the disk. */
	r = read_file(path, 1 << 20, &text, NULL);
	check_int(r, ==, 0);
	check(text && !strstr(text, "secret-") && strstr(text, "sha256"));
	free(text);
	r = auth_db_load(path, &back);
	check_int(r, ==, 0);
	if (back) {
		check_uint(back->n, ==, 3);
		check(auth_db_find(back, h[1]) != NULL);
		auth_grants_format(auth_db_find(back, h[1]), grants,
				   sizeof(grants));
		check(strcmp(grants, "read=* write=beta") == 0);
		r = auth_db_revoke(back, ids[1]);
		check_int(r, ==, 0);
		r = auth_db_revoke(back, ids[1]);
		check_int(r, ==, -ENOENT);
		check(auth_db_find(back, h[1]) == NULL);
		check(auth_db_find(back, h[0]) != NULL);
		check(auth_db_find(back, h[2]) != NULL);
		auth_db_unref(back);
	}
	rm_tmp(path);
	auth_db_unref(db);
}

static void test_file_bad(void)
{
	int r;
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"format\": 2, \"tokens\": []}",
	    "{\"format\": 1}",
	    "{\"format\": 1, \"tokens\": [{\"id\": \"x\"}]}",
	    "{\"format\": 1, \"tokens\": [{\"id\": \"0123456789ab\", "
	    "\"label\": \"l\", \"sha256\": \"zz\", \"created\": 1, "
	    "\"read\": [], \"write\": []}]}",
	    "{\"format\": 1, \"tokens\": [{\"id\": \"0123456789ab\", "
	    "\"label\": \"l\", \"sha256\": \"" /* 64 hex digits */
	    "00000000000000000000000000000000"
	    "00000000000000000000000000000000\", \"created\": 1, "
	    "\"read\": [\"../etc\"], \"write\": []}]}",
	};
	char *path = tmp_path();
	struct auth_db *db = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = write_file_atomic(path, bad[i], strlen(bad[i]), 0600);
		check_int(r, ==, 0);
		r = auth_db_load(path, &db);
		check_int(r, ==, -EBADMSG);
	}
	(void)unlink(path);
	r = auth_db_load(path, &db);
	check_int(r, ==, -ENOENT);
	rm_tmp(path);
}

static void test_watch_reload(void)
{
	int r;
	uint8_t h[3][VMF_HASH_LEN];
	char ids[3][AUTH_ID_LEN + 1];
	struct auth_db *db = make_db(h, ids), *cur;
	struct auth_watch *w = NULL;
	char *path = tmp_path();

	r = auth_db_save(db, path);
	check_int(r, ==, 0);
	r = auth_watch_new(path, &w);
	check_int(r, ==, 0);
	if (!w)
		return;
	cur = auth_watch_get(w);
	check(auth_db_find(cur, h[0]) != NULL);
	/* Revoke and save: the very next get sees it, with no delay. */
	r = auth_db_revoke(db, ids[0]);
	check_int(r, ==, 0);
	r = auth_db_save(db, path);
	check_int(r, ==, 0);
	{
		struct auth_db *next = auth_watch_get(w);

		check(auth_db_find(next, h[0]) == NULL);
		check(auth_db_find(next, h[1]) != NULL);
		/* the old snapshot is still usable by its holder */
		check(auth_db_find(cur, h[0]) != NULL);
		auth_db_unref(next);
	}
	auth_db_unref(cur);
	/* A broken file keeps the last good tokens. */
	r = write_file_atomic(path, "{", 1, 0600);
	check_int(r, ==, 0);
	cur = auth_watch_get(w);
	check(auth_db_find(cur, h[1]) != NULL);
	auth_db_unref(cur);
	auth_watch_free(w);
	rm_tmp(path);
	auth_db_unref(db);
}

int main(void)
{
	TEST(test_token_new(), "new tokens: vmf_ + 43 base64url characters");
	TEST(test_token_hash(), "a token's hash is its SHA-256");
	TEST(test_bearer(), "Authorization: Bearer parsing");
	TEST(test_grants(), "read, write, '*' and admin grants");
	TEST(test_write_implies_read(), "write implies read");
	TEST(test_bad_grants(), "invalid grants and labels are refused");
	TEST(test_file_roundtrip(), "tokens.json round trip and revoke");
	TEST(test_file_bad(), "malformed tokens.json is refused");
	TEST(test_watch_reload(), "a changed file is reloaded at once");
	return test_done();
}
