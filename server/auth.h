/* SPDX-License-Identifier: MIT */
/* Bearer tokens: generation, hashing, grants, the tokens.json file.
 *
 * The server stores only SHA-256(token); a token is shown once, when it
 * is made.  A token grants read and/or write on image names (or "*" for
 * every image); write implies read; admin implies everything, including
 * /v1/stats.
 *
 * struct auth_db is immutable once loaded and reference counted, so
 * request threads read it without a lock.  struct auth_watch hands out
 * the current db and reloads the file when it changes; any thread.
 */
#ifndef VMFERRY_AUTH_H
#define VMFERRY_AUTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define AUTH_TOKEN_PREFIX "vmf_"
#define AUTH_ID_LEN	  12 /* hex digits */
#define AUTH_LABEL_MAX	  128
#define AUTH_ALL_IMAGES	  "*"

struct auth_token {
	char id[AUTH_ID_LEN + 1];
	char *label;
	uint8_t hash[VMF_HASH_LEN];
	int64_t created; /* Unix time */
	bool admin;
	char **read; /* image names or "*" */
	size_t nread;
	char **write;
	size_t nwrite;
	char **run; /* images the server may run for it (implies read) */
	size_t nrun;
};

struct auth_db {
	atomic_uint refs;
	struct auth_token *tokens;
	size_t n;
};

/* What a new token may do (borrowed strings). */
struct auth_grants {
	bool admin;
	const char *const *read;
	size_t nread;
	const char *const *write;
	size_t nwrite;
	const char *const *run;
	size_t nrun;
};

/* A new random token, "vmf_" + base64url of 32 random bytes; caller
 * frees (it is a secret: OPENSSL_cleanse before free).  -EIO if the
 * random generator fails, -ENOMEM. */
int auth_token_new(char **ret_token);

/* SHA-256 of the token's text. */
void auth_token_hash(const char *token, uint8_t out[VMF_HASH_LEN]);

/* Parse an Authorization header value "Bearer TOKEN" (scheme
 * case-insensitive, token68 characters, at most VMF_TOKEN_MAX).
 * *ret_token borrows from value.  Returns 0 or -EINVAL. */
int auth_parse_bearer(const char *value, const char **ret_token);

/* True if s is "*" or a valid image name: what a grant may name. */
bool auth_grant_valid(const char *s);

/* The entry whose hash equals hash, or NULL.  Compares every entry in
 * constant time per entry; the result borrows from db. */
const struct auth_token *auth_db_find(const struct auth_db *db,
				      const uint8_t hash[VMF_HASH_LEN]);

bool auth_can_read(const struct auth_token *t, const char *image);
bool auth_can_write(const struct auth_token *t, const char *image);
/* True if t may have the server run image's VM, stop it and use its
 * console (the "run" grant, or admin). */
bool auth_can_run(const struct auth_token *t, const char *image);
/* True if t may write some image (block uploads are not per image). */
bool auth_can_write_any(const struct auth_token *t);

/* Grants as text, "admin" or "read=a,b write=c run=d", into buf. */
void auth_grants_format(const struct auth_token *t, char *buf, size_t len);

/* An empty db with one reference. */
struct auth_db *auth_db_new(void);
/* Load a tokens.json file.  -ENOENT, -EBADMSG (not our format),
 * -EFBIG, -ENOMEM. */
int auth_db_load(const char *path, struct auth_db **ret);
/* Write db to path atomically (mode 0600). */
int auth_db_save(const struct auth_db *db, const char *path);
/* Add a token with hash and grants (validated: -EINVAL).  *ret_id
 * borrows from db until db next changes. */
int auth_db_add(struct auth_db *db, const char *label,
		const struct auth_grants *g, const uint8_t hash[VMF_HASH_LEN],
		int64_t created, const char **ret_id);
/* Remove the token with this id; -ENOENT if none. */
int auth_db_revoke(struct auth_db *db, const char *id);

struct auth_db *auth_db_ref(struct auth_db *db);
/* Drop a reference; frees at zero.  NULL is a no-op. */
void auth_db_unref(struct auth_db *db);

/* Watches a tokens.json file.  auth_watch_new() loads it (errors as
 * auth_db_load). */
struct auth_watch;
int auth_watch_new(const char *path, struct auth_watch **ret);
void auth_watch_free(struct auth_watch *w);
/* The current db (a new reference: auth_db_unref it).  Reloads first if
 * the file changed; if the new file does not load, logs a warning and
 * keeps the old one.  Blocks on a stat(), and on a read when changed. */
struct auth_db *auth_watch_get(struct auth_watch *w);

#endif
