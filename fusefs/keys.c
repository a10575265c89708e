/* SPDX-License-Identifier: MIT */
/* The user's key file and a cache directory's wrapped data key.
 *
 * Owns DIR/cache.id and DIR/data.key (keys.h, which gives data.key's
 * layout) and the user key file.
 * Stateless; called from one thread at start-up.  Every buffer that held
 * key material (hex or binary) is cleansed before it goes out of scope.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"

#include "keys.h"

#define KEYS_CACHE_ID "cache.id"
#define KEYS_DATA_KEY "data.key"

/* Read and parse an existing user key file. */
static int keys_user_read(const char *path, uint8_t ret_key[CRYPTO_KEY_LEN])
{
	/* 64 digits, an optional newline, and one byte to see excess. */
	char buf[VMF_HASH_HEX_LEN + 2];
	uint8_t key[CRYPTO_KEY_LEN];
	ssize_t n;
	int r;

	n = read_private(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	r = -EBADMSG;
	if (n == VMF_HASH_HEX_LEN ||
	    (n == VMF_HASH_HEX_LEN + 1 && buf[VMF_HASH_HEX_LEN] == '\n')) {
		buf[VMF_HASH_HEX_LEN] = '\0';
		if (hash_from_hex(buf, key, sizeof(key)) == 0) {
			memcpy(ret_key, key, sizeof(key));
			r = 0;
		}
	}
	crypto_cleanse(buf, sizeof(buf));
	crypto_cleanse(key, sizeof(key));
	return r;
}

/* Create a new user key file at path, never replacing one that appears
 * meanwhile: the key is written to a temporary file (atomically and
 * durably), then hard-linked to path, which fails with -EEXIST if
 * another process got there first. */
static int keys_user_create(const char *path, uint8_t ret_key[CRYPTO_KEY_LEN])
{
	_cleanup_free_ char *parent = strdup(path), *tmp = NULL;
	char hex[VMF_HASH_HEX_LEN + 1];
	uint8_t key[CRYPTO_KEY_LEN];
	char *slash;
	int r;

	if (!parent)
		return -ENOMEM;
	slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		r = mkdir_p(parent, 0700);
		if (r < 0)
			return r;
	}
	if (asprintf(&tmp, "%s.new.%ld", path, (long)getpid()) < 0)
		return -ENOMEM;
	r = crypto_random(key, sizeof(key));
	if (r == 0) {
		hash_to_hex(key, sizeof(key), hex);
		hex[VMF_HASH_HEX_LEN] = '\n';
		r = write_file_atomic(tmp, hex, sizeof(hex), 0600);
		crypto_cleanse(hex, sizeof(hex));
	}
	if (r == 0 && link(tmp, path) < 0)
		r = -errno;
	/* Best effort: a leftover is a 0600 copy next to the key. */
	(void)unlink(tmp);
	if (r == 0)
		r = fsync_parent_dir(path);
	if (r == 0)
		memcpy(ret_key, key, sizeof(key));
	crypto_cleanse(key, sizeof(key));
	return r;
}

int keys_user_load(const char *path, bool create,
		   uint8_t ret_key[CRYPTO_KEY_LEN], bool *ret_created)
{
	int r = keys_user_read(path, ret_key);
	bool created = false;

	if (r == -ENOENT && create) {
		r = keys_user_create(path, ret_key);
		created = r == 0;
		if (r == -EEXIST) /* created concurrently: use that one */
			r = keys_user_read(path, ret_key);
	}
	if (r == 0 && ret_created)
		*ret_created = created;
	return r;
}

/* Read dir/name, at most max bytes, into buf: its size, -EFBIG if it is
 * larger, or -errno. */
static ssize_t keys_read(const char *dir, const char *name, void *buf,
			 size_t max)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	uint8_t extra;
	ssize_t n;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	n = read_up_to(fd, buf, max);
	if (n == (ssize_t)max && read_up_to(fd, &extra, 1) == 1)
		return -EFBIG;
	return n;
}

/* Read a file that must hold exactly len bytes: 0, -ENOENT, -EBADMSG
 * (another size), or -errno. */
static int keys_read_exact(const char *dir, const char *name, void *out,
			   size_t len)
{
	ssize_t n = keys_read(dir, name, out, len);

	if (n == -EFBIG || (n >= 0 && (size_t)n != len))
		return -EBADMSG;
	return n < 0 ? (int)n : 0;
}

static int keys_write(const char *dir, const char *name, const void *buf,
		      size_t len)
{
	_cleanup_free_ char *path = NULL;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	return write_file_atomic(path, buf, len, 0600);
}

void keys_user_fini(struct keys_user *u)
{
	crypto_cleanse(u, sizeof(*u));
}

const char *keys_kind_name(enum keys_kind kind)
{
	return kind == KEYS_KIND_PASSPHRASE ? "passphrase" : "key file";
}

/* data.key (keys.h): a header, then the wrapped key. */
#define KEYS_MAGIC	"VMFDKEY2"
#define KEYS_MAGIC_LEN	8
#define KEYS_HDR_LEN	36
#define KEYS_FILE_LEN	(KEYS_HDR_LEN + CRYPTO_WRAPPED_KEY_LEN)
#define KEYS_KDF_NONE	0
#define KEYS_KDF_SCRYPT 1
#define KEYS_LEGACY_LEN CRYPTO_WRAPPED_KEY_LEN

/* A data.key in memory.  hdr_len is 0 for the first, bare format. */
struct keys_wrapped {
	enum keys_kind kind;
	struct passphrase_kdf kdf; /* KEYS_KIND_PASSPHRASE */
	uint8_t hdr[KEYS_HDR_LEN];
	size_t hdr_len;
	uint8_t wrapped[CRYPTO_WRAPPED_KEY_LEN];
};

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Fill w's kind, parameters and header for a new wrap under user. */
static int keys_header_new(const struct keys_user *user, struct keys_wrapped *w)
{
	uint8_t *h;
	int r;

	memset(w, 0, sizeof(*w));
	h = w->hdr;
	w->kind = user->kind;
	w->hdr_len = KEYS_HDR_LEN;
	memcpy(h, KEYS_MAGIC, KEYS_MAGIC_LEN);
	h[8] = (uint8_t)user->kind;
	if (user->kind == KEYS_KIND_FILE)
		return 0;
	if (user->kind != KEYS_KIND_PASSPHRASE)
		return -EINVAL;
	r = passphrase_kdf_new(&w->kdf);
	if (r < 0)
		return r;
	h[9] = KEYS_KDF_SCRYPT;
	h[10] = w->kdf.log2_n;
	put_be32(h + 12, w->kdf.r);
	put_be32(h + 16, w->kdf.p);
	memcpy(h + 20, w->kdf.salt, PASSPHRASE_SALT_LEN);
	return 0;
}

/* Parse data.key's bytes: 0 or -EPROTO. */
static int keys_parse(const uint8_t *buf, size_t len, struct keys_wrapped *w)
{
	static const uint8_t zero[PASSPHRASE_SALT_LEN];
	const uint8_t *h = buf;

	memset(w, 0, sizeof(*w));
	if (len == KEYS_LEGACY_LEN) {
		w->kind = KEYS_KIND_FILE;
		memcpy(w->wrapped, buf, CRYPTO_WRAPPED_KEY_LEN);
		return 0;
	}
	if (len != KEYS_FILE_LEN || memcmp(h, KEYS_MAGIC, KEYS_MAGIC_LEN) ||
	    h[11] != 0)
		return -EPROTO;
	if (h[8] == KEYS_KIND_FILE) {
		/* No KDF: every parameter byte is zero. */
		if (h[9] != KEYS_KDF_NONE || h[10] != 0 ||
		    memcmp(h + 12, zero, 8) || memcmp(h + 20, zero, 16))
			return -EPROTO;
		w->kind = KEYS_KIND_FILE;
	} else if (h[8] == KEYS_KIND_PASSPHRASE && h[9] == KEYS_KDF_SCRYPT) {
		w->kind = KEYS_KIND_PASSPHRASE;
		w->kdf.log2_n = h[10];
		w->kdf.r = get_be32(h + 12);
		w->kdf.p = get_be32(h + 16);
		memcpy(w->kdf.salt, h + 20, PASSPHRASE_SALT_LEN);
		if (passphrase_kdf_check(&w->kdf) < 0)
			return -EPROTO;
	} else {
		return -EPROTO;
	}
	memcpy(w->hdr, h, KEYS_HDR_LEN);
	w->hdr_len = KEYS_HDR_LEN;
	memcpy(w->wrapped, buf + KEYS_HDR_LEN, CRYPTO_WRAPPED_KEY_LEN);
	return 0;
}

/* Read and parse dir's data.key: 0, -ENOENT, -EPROTO or -errno. */
static int keys_read_wrapped(const char *dir, struct keys_wrapped *w)
{
	uint8_t buf[KEYS_FILE_LEN];
	ssize_t n = keys_read(dir, KEYS_DATA_KEY, buf, sizeof(buf));

	if (n == -EFBIG)
		return -EPROTO;
	if (n < 0)
		return (int)n;
	return keys_parse(buf, (size_t)n, w);
}

/* The key that wraps w's data key: the user's key, or the passphrase
 * derived under w's parameters.  -EKEYREJECTED if user is the other kind
 * of key. */
static int keys_wrapping_key(const struct keys_user *user,
			     const struct keys_wrapped *w,
			     uint8_t ret_key[CRYPTO_KEY_LEN])
{
	if (user->kind != w->kind)
		return -EKEYREJECTED;
	if (user->kind == KEYS_KIND_FILE) {
		memcpy(ret_key, user->key, CRYPTO_KEY_LEN);
		return 0;
	}
	return passphrase_derive(user->pass, user->pass_len, &w->kdf, ret_key);
}

/* Wrap data_key under user into a new data.key image (KEYS_FILE_LEN). */
static int keys_wrap(const struct keys_user *user,
		     const uint8_t id[CRYPTO_CACHE_ID_LEN],
		     const uint8_t data_key[CRYPTO_KEY_LEN],
		     uint8_t out[KEYS_FILE_LEN])
{
	struct keys_wrapped w;
	uint8_t wkey[CRYPTO_KEY_LEN];
	int r;

	r = keys_header_new(user, &w);
	if (r == 0)
		r = keys_wrapping_key(user, &w, wkey);
	if (r == 0)
		r = crypto_wrap_key(wkey, id, w.hdr, w.hdr_len, data_key,
				    w.wrapped);
	crypto_cleanse(wkey, sizeof(wkey));
	if (r == 0) {
		memcpy(out, w.hdr, KEYS_HDR_LEN);
		memcpy(out + KEYS_HDR_LEN, w.wrapped, CRYPTO_WRAPPED_KEY_LEN);
	}
	return r;
}

static int keys_unwrap(const struct keys_user *user,
		       const uint8_t id[CRYPTO_CACHE_ID_LEN],
		       const struct keys_wrapped *w,
		       uint8_t ret_data_key[CRYPTO_KEY_LEN])
{
	uint8_t wkey[CRYPTO_KEY_LEN];
	int r;

	r = keys_wrapping_key(user, w, wkey);
	if (r == 0)
		r = crypto_unwrap_key(wkey, id, w->hdr, w->hdr_len, w->wrapped,
				      ret_data_key);
	crypto_cleanse(wkey, sizeof(wkey));
	return r;
}

int keys_data_kind(const char *dir, enum keys_kind *ret_kind)
{
	struct keys_wrapped w;
	int r = keys_read_wrapped(dir, &w);

	if (r == 0)
		*ret_kind = w.kind;
	return r;
}

/* A new identity: cache.id is written first, data.key last, so a crash
 * in between leaves the state keys_destroy() leaves (no data.key), from
 * which the next open starts again. */
static int keys_data_create(const char *dir, const struct keys_user *user,
			    uint8_t id[CRYPTO_CACHE_ID_LEN],
			    uint8_t data_key[CRYPTO_KEY_LEN])
{
	uint8_t file[KEYS_FILE_LEN];
	int r;

	log_debug(LOG_CAT_CRYPTO, "keys %s: new cache identity (%s)", dir,
		  keys_kind_name(user->kind));
	r = crypto_random(id, CRYPTO_CACHE_ID_LEN);
	if (r == 0)
		r = crypto_random(data_key, CRYPTO_KEY_LEN);
	if (r == 0)
		r = keys_wrap(user, id, data_key, file);
	if (r == 0)
		r = keys_write(dir, KEYS_CACHE_ID, id, CRYPTO_CACHE_ID_LEN);
	if (r == 0)
		r = keys_write(dir, KEYS_DATA_KEY, file, sizeof(file));
	return r;
}

/* Read cache.id and data.key: 0, or -ENOENT when data.key is absent
 * (whatever cache.id is), or an error as keys_data_open() documents. */
static int keys_read_both(const char *dir, uint8_t id[CRYPTO_CACHE_ID_LEN],
			  struct keys_wrapped *w)
{
	int r, rw;

	r = keys_read_exact(dir, KEYS_CACHE_ID, id, CRYPTO_CACHE_ID_LEN);
	rw = keys_read_wrapped(dir, w);
	if (rw == -ENOENT && (r == 0 || r == -ENOENT || r == -EBADMSG))
		return -ENOENT;
	if (r == -EBADMSG || r == -ENOENT)
		return -EIO; /* data.key without a usable cache.id */
	return r < 0 ? r : rw;
}

int keys_data_open(const char *dir, const struct keys_user *user,
		   uint8_t ret_cache_id[CRYPTO_CACHE_ID_LEN],
		   uint8_t ret_data_key[CRYPTO_KEY_LEN])
{
	uint8_t id[CRYPTO_CACHE_ID_LEN], key[CRYPTO_KEY_LEN];
	struct keys_wrapped w;
	int r;

	r = keys_read_both(dir, id, &w);
	if (r == -ENOENT)
		r = keys_data_create(dir, user, id, key);
	else if (r == 0)
		r = keys_unwrap(user, id, &w, key);
	if (r == 0) {
		memcpy(ret_cache_id, id, sizeof(id));
		memcpy(ret_data_key, key, sizeof(key));
	}
	crypto_cleanse(key, sizeof(key));
	return r;
}

int keys_rekey(const char *dir, const struct keys_user *old,
	       const struct keys_user *new_user)
{
	uint8_t id[CRYPTO_CACHE_ID_LEN], key[CRYPTO_KEY_LEN];
	uint8_t file[KEYS_FILE_LEN];
	struct keys_wrapped w;
	int r;

	r = keys_read_both(dir, id, &w);
	if (r == 0)
		r = keys_unwrap(old, id, &w, key);
	if (r == 0)
		r = keys_wrap(new_user, id, key, file);
	crypto_cleanse(key, sizeof(key));
	if (r == 0)
		r = keys_write(dir, KEYS_DATA_KEY, file, sizeof(file));
	return r;
}

int keys_destroy(const char *dir)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	uint8_t junk[KEYS_FILE_LEN];
	struct stat st;
	int r;

	if (asprintf(&path, "%s/%s", dir, KEYS_DATA_KEY) < 0)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* Overwrite what the file holds (at least a whole wrapped key).  On
	 * a copy-on-write filesystem or flash the old bytes may survive
	 * physically; they are still wrapped by the user key. */
	for (off_t off = 0; off < st.st_size || off == 0;
	     off += (off_t)sizeof(junk)) {
		r = crypto_random(junk, sizeof(junk));
		if (r == 0)
			r = full_pwrite(fd, junk, sizeof(junk), off);
		if (r < 0)
			return r;
	}
	if (fsync(fd) < 0)
		return -errno;
	if (unlink(path) < 0)
		return -errno;
	return fsync_parent_dir(path);
}
