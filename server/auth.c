/* SPDX-License-Identifier: MIT */
/* Bearer tokens and their grants.
 *
 * Owns the in-memory token db and the tokens.json reader/writer.  A db
 * is never changed once published by auth_watch: a reload builds a new
 * one and swaps the pointer under w->lock; readers hold a reference.
 * Tokens themselves never reach the log or the disk, only their hashes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "util.h"

#include "auth.h"
#include "mutex.h"

#define AUTH_FILE_MAX	 (16u << 20)
#define AUTH_RANDOM_LEN	 32
#define AUTH_FILE_FORMAT 1

int auth_token_new(char **ret_token)
{
	static const char b64url[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t rnd[AUTH_RANDOM_LEN + 2] = {0}; /* padded to a multiple of 3 */
	size_t plen = strlen(AUTH_TOKEN_PREFIX);
	size_t n = (AUTH_RANDOM_LEN * 8 + 5) / 6; /* unpadded base64 length */
	char *tok, *p;

	if (RAND_bytes(rnd, AUTH_RANDOM_LEN) != 1)
		return -EIO;
	tok = malloc(plen + n + 4);
	if (!tok) {
		OPENSSL_cleanse(rnd, sizeof(rnd));
		return -ENOMEM;
	}
	memcpy(tok, AUTH_TOKEN_PREFIX, plen);
	p = tok + plen;
	for (size_t i = 0; i < AUTH_RANDOM_LEN; i += 3) {
		uint32_t v = (uint32_t)rnd[i] << 16 |
			     (uint32_t)rnd[i + 1] << 8 | rnd[i + 2];

		*p++ = b64url[v >> 18 & 63];
		*p++ = b64url[v >> 12 & 63];
		*p++ = b64url[v >> 6 & 63];
		*p++ = b64url[v & 63];
	}
	tok[plen + n] = '\0'; /* drop what the zero padding encoded */
	OPENSSL_cleanse(rnd, sizeof(rnd));
	*ret_token = tok;
	return 0;
}

void auth_token_hash(const char *token, uint8_t out[VMF_HASH_LEN])
{
	hash_sha256(token, strlen(token), out);
}

static bool is_token68_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || strchr("-._~+/", c);
}

int auth_parse_bearer(const char *value, const char **ret_token)
{
	const char *tok;
	size_t n, i;

	if (!value || strncasecmp(value, "Bearer ", 7) != 0)
		return -EINVAL;
	tok = value + 7;
	while (*tok == ' ')
		tok++;
	n = strlen(tok);
	while (n > 0 && tok[n - 1] == ' ')
		n--;
	if (n == 0 || n > VMF_TOKEN_MAX)
		return -EINVAL;
	/* token68 = 1*( ALPHA / DIGIT / "-._~+/" ) *"=" */
	for (i = 0; i < n && is_token68_char(tok[i]); i++)
		;
	for (; i < n && tok[i] == '='; i++)
		;
	if (i != n || tok[n] != '\0')
		return -EINVAL; /* trailing spaces are not part of a token */
	*ret_token = tok;
	return 0;
}

bool auth_grant_valid(const char *s)
{
	return strcmp(s, AUTH_ALL_IMAGES) == 0 || image_name_valid(s);
}

const struct auth_token *auth_db_find(const struct auth_db *db,
				      const uint8_t hash[VMF_HASH_LEN])
{
	const struct auth_token *found = NULL;

	/* No early exit: the time taken does not say which entry matched. */
	for (size_t i = 0; i < db->n; i++)
		if (CRYPTO_memcmp(db->tokens[i].hash, hash, VMF_HASH_LEN) == 0)
			found = &db->tokens[i];
	return found;
}

static bool list_has(char *const *list, size_t n, const char *image)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], AUTH_ALL_IMAGES) == 0 ||
		    strcmp(list[i], image) == 0)
			return true;
	return false;
}

bool auth_can_write(const struct auth_token *t, const char *image)
{
	return t->admin || list_has(t->write, t->nwrite, image);
}

bool auth_can_run(const struct auth_token *t, const char *image)
{
	return t->admin || list_has(t->run, t->nrun, image);
}

bool auth_can_read(const struct auth_token *t, const char *image)
{
	return auth_can_write(t, image) || auth_can_run(t, image) ||
	       list_has(t->read, t->nread, image);
}

bool auth_can_write_any(const struct auth_token *t)
{
	return t->admin || t->nwrite > 0;
}

static size_t append_list(char *buf, size_t len, size_t at, const char *key,
			  char *const *list, size_t n)
{
	if (n == 0 || at >= len)
		return at;
	at += (size_t)snprintf(buf + at, len - at, "%s%s=", at ? " " : "", key);
	for (size_t i = 0; i < n && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? "," : "",
				       list[i]);
	return at;
}

void auth_grants_format(const struct auth_token *t, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	if (t->admin) {
		snprintf(buf, len, "admin");
		return;
	}
	at = append_list(buf, len, at, "read", t->read, t->nread);
	at = append_list(buf, len, at, "write", t->write, t->nwrite);
	at = append_list(buf, len, at, "run", t->run, t->nrun);
	if (at == 0)
		snprintf(buf, len, "none");
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static void token_fini(struct auth_token *t)
{
	free(t->label);
	free_list(t->read, t->nread);
	free_list(t->write, t->nwrite);
	free_list(t->run, t->nrun);
}

struct auth_db *auth_db_new(void)
{
	struct auth_db *db = calloc(1, sizeof(*db));

	if (db)
		atomic_init(&db->refs, 1);
	return db;
}

struct auth_db *auth_db_ref(struct auth_db *db)
{
	/* Relaxed: taking a reference needs no ordering, as in kref. */
	atomic_fetch_add_explicit(&db->refs, 1, memory_order_relaxed);
	return db;
}

void auth_db_unref(struct auth_db *db)
{
	if (!db)
		return;
	/* acq_rel: the last owner must see every other owner's reads done. */
	if (atomic_fetch_sub_explicit(&db->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < db->n; i++)
		token_fini(&db->tokens[i]);
	free(db->tokens);
	free(db);
}

static void auth_db_unrefp(struct auth_db **db)
{
	auth_db_unref(*db);
}

static int list_from_json(json_t *arr, char ***ret, size_t *ret_n)
{
	size_t n, i;
	json_t *v;
	char **list;

	if (!json_is_array(arr))
		return -EBADMSG;
	n = json_array_size(arr);
	list = calloc(n + 1, sizeof(*list));
	if (!list)
		return -ENOMEM;
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) ||
		    !auth_grant_valid(json_string_value(v)))
			goto bad;
		list[i] = strdup(json_string_value(v));
		if (!list[i])
			goto bad;
	}
	*ret = list;
	*ret_n = n;
	return 0;
bad:
	free_list(list, n);
	return -EBADMSG;
}

static int token_from_json(json_t *o, struct auth_token *t)
{
	const char *id, *label, *hex;
	json_int_t created;
	int admin = 0;
	json_t *rd, *wr, *run = NULL;

	if (json_unpack(o, "{s:s, s:s, s:s, s:I, s?b, s:o, s:o, s?o}", "id",
			&id, "label", &label, "sha256", &hex, "created",
			&created, "admin", &admin, "read", &rd, "write", &wr,
			"run", &run) < 0)
		return -EBADMSG;
	if (strlen(id) != AUTH_ID_LEN ||
	    hash_from_hex(hex, t->hash, VMF_HASH_LEN) < 0)
		return -EBADMSG;
	memcpy(t->id, id, AUTH_ID_LEN + 1);
	t->created = created;
	t->admin = admin;
	t->label = strdup(label);
	if (!t->label)
		return -ENOMEM;
	if (list_from_json(rd, &t->read, &t->nread) < 0 ||
	    list_from_json(wr, &t->write, &t->nwrite) < 0 ||
	    (run && list_from_json(run, &t->run, &t->nrun) < 0))
		return -EBADMSG;
	return 0;
}

int auth_db_load(const char *path, struct auth_db **ret)
{
	_cleanup_(auth_db_unrefp) struct auth_db *db = NULL;
	_cleanup_(json_decrefp) json_t *root = NULL;
	_cleanup_free_ char *buf = NULL;
	json_t *arr, *o;
	json_int_t format;
	size_t len, i;
	int r;

	r = read_file(path, AUTH_FILE_MAX, &buf, &len);
	if (r < 0)
		return r;
	root = json_loadb(buf, len, 0, NULL);
	if (!root || json_unpack(root, "{s:I, s:o}", "format", &format,
				 "tokens", &arr) < 0)
		return -EBADMSG;
	if (format != AUTH_FILE_FORMAT || !json_is_array(arr))
		return -EBADMSG;
	db = auth_db_new();
	if (!db)
		return -ENOMEM;
	db->tokens = calloc(json_array_size(arr) + 1, sizeof(*db->tokens));
	if (!db->tokens)
		return -ENOMEM;
	json_array_foreach(arr, i, o)
	{
		/* Count the entry first so a half-filled one is freed too. */
		db->n = i + 1;
		r = token_from_json(o, &db->tokens[i]);
		if (r < 0)
			return r;
	}
	*ret = steal_ptr(&db);
	return 0;
}

static json_t *list_to_json(char *const *list, size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, json_string(list[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	return arr;
}

static json_t *token_to_json(const struct auth_token *t)
{
	char hex[VMF_HASH_HEX_LEN + 1];

	hash_to_hex(t->hash, VMF_HASH_LEN, hex);
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:b, s:o*, s:o*}", "id",
			      t->id, "label", t->label, "sha256", hex,
			      "created", (json_int_t)t->created, "admin",
			      t->admin, "read", list_to_json(t->read, t->nread),
			      "write", list_to_json(t->write, t->nwrite));

	/* "run" only when granted: older servers read the file too. */
	if (o && t->nrun &&
	    json_object_set_new(o, "run", list_to_json(t->run, t->nrun)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int auth_db_save(const struct auth_db *db, const char *path)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	_cleanup_free_ char *text = NULL;
	json_t *arr = json_array();

	root =
	    json_pack("{s:i, s:o*}", "format", AUTH_FILE_FORMAT, "tokens", arr);
	if (!root)
		return -ENOMEM;
	for (size_t i = 0; i < db->n; i++) {
		json_t *o = token_to_json(&db->tokens[i]);

		if (!o || json_array_append_new(arr, o) < 0)
			return -ENOMEM;
	}
	text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	return write_file_atomic(path, text, strlen(text), 0600);
}

static int list_copy(const char *const *src, size_t n, char ***ret)
{
	char **list = calloc(n + 1, sizeof(*list));

	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!auth_grant_valid(src[i])) {
			free_list(list, n);
			return -EINVAL;
		}
		list[i] = strdup(src[i]);
		if (!list[i]) {
			free_list(list, n);
			return -ENOMEM;
		}
	}
	*ret = list;
	return 0;
}

static bool label_valid(const char *label)
{
	size_t n = strlen(label);

	if (n == 0 || n > AUTH_LABEL_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)label[i] < 0x20 || label[i] == 0x7f)
			return false;
	return true;
}

int auth_db_add(struct auth_db *db, const char *label,
		const struct auth_grants *g, const uint8_t hash[VMF_HASH_LEN],
		int64_t created, const char **ret_id)
{
	struct auth_token t = {.created = created, .admin = g->admin};
	struct auth_token *grown;
	uint8_t rnd[AUTH_ID_LEN / 2];
	int r;

	if (!label_valid(label))
		return -EINVAL;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	hash_to_hex(rnd, sizeof(rnd), t.id);
	memcpy(t.hash, hash, VMF_HASH_LEN);
	t.label = strdup(label);
	if (!t.label)
		return -ENOMEM;
	r = list_copy(g->read, g->nread, &t.read);
	if (r == 0) {
		t.nread = g->nread;
		r = list_copy(g->write, g->nwrite, &t.write);
	}
	if (r == 0) {
		t.nwrite = g->nwrite;
		r = list_copy(g->run, g->nrun, &t.run);
	}
	if (r == 0)
		t.nrun = g->nrun;
	grown =
	    r == 0 ? realloc(db->tokens, (db->n + 1) * sizeof(*grown)) : NULL;
	if (!grown) {
		token_fini(&t);
		return r < 0 ? r : -ENOMEM;
	}
	db->tokens = grown;
	db->tokens[db->n] = t;
	*ret_id = db->tokens[db->n].id;
	db->n++;
	return 0;
}

int auth_db_revoke(struct auth_db *db, const char *id)
{
	for (size_t i = 0; i < db->n; i++) {
		if (strcmp(db->tokens[i].id, id) != 0)
			continue;
		token_fini(&db->tokens[i]);
		memmove(&db->tokens[i], &db->tokens[i + 1],
			(db->n - i - 1) * sizeof(*db->tokens));
		db->n--;
		return 0;
	}
	return -ENOENT;
}

/* What identifies one version of the file: write_file_atomic() renames
 * a new inode into place, so the inode changes even when two writes fall
 * in the same timestamp tick. */
struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct auth_watch {
	char *path;	       /* set before threads start */
	pthread_mutex_t lock;  /* protects db and id */
	struct auth_db *db;    /* current, one reference held */
	struct file_id id;     /* of the file db was loaded from */
	struct file_id failed; /* last version that failed to load */
};

static int file_id_get(const char *path, struct file_id *ret)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	*ret = (struct file_id){st.st_dev, st.st_ino, st.st_size, st.st_mtim,
				st.st_ctim};
	return 0;
}

static bool file_id_eq(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

int auth_watch_new(const char *path, struct auth_watch **ret)
{
	struct auth_watch *w;
	struct file_id id;
	struct auth_db *db;
	int r;

	r = file_id_get(path, &id);
	if (r < 0)
		return r;
	r = auth_db_load(path, &db);
	if (r < 0)
		return r;
	w = calloc(1, sizeof(*w));
	if (!w || !(w->path = strdup(path))) {
		free(w);
		auth_db_unref(db);
		return -ENOMEM;
	}
	if (pthread_mutex_init(&w->lock, NULL) != 0)
		abort();
	w->db = db;
	w->id = id;
	*ret = w;
	return 0;
}

void auth_watch_free(struct auth_watch *w)
{
	if (!w)
		return;
	auth_db_unref(w->db);
	if (pthread_mutex_destroy(&w->lock) != 0)
		abort();
	free(w->path);
	free(w);
}

/* Load the changed file outside the lock and publish it. */
static void reload(struct auth_watch *w, const struct file_id *id)
{
	struct auth_db *db, *old;
	bool again;
	int r;

	r = auth_db_load(w->path, &db);
	if (r < 0) {
		/* Warn once per broken version of the file, not per request. */
		mutex_lock(&w->lock);
		again = file_id_eq(&w->failed, id);
		w->failed = *id;
		mutex_unlock(&w->lock);
		if (!again)
			log_warn_errno(r,
				       "reloading %s: %m; keeping the tokens "
				       "loaded before",
				       w->path);
		return;
	}
	mutex_lock(&w->lock);
	old = w->db;
	w->db = db;
	w->id = *id;
	mutex_unlock(&w->lock);
	auth_db_unref(old);
	log_info("reloaded %s: %zu tokens", w->path, db->n);
}

struct auth_db *auth_watch_get(struct auth_watch *w)
{
	struct file_id id;
	struct auth_db *db;
	bool changed;

	if (file_id_get(w->path, &id) == 0) {
		mutex_lock(&w->lock);
		changed = !file_id_eq(&id, &w->id);
		mutex_unlock(&w->lock);
		if (changed)
			reload(w, &id);
	}
	mutex_lock(&w->lock);
	db = auth_db_ref(w->db);
	mutex_unlock(&w->lock);
	return db;
}
