/* SPDX-License-Identifier: MIT */
/* The user's key file and a cache directory's wrapped data key.
 *
 * Owns DIR/cache.id and DIR/data.key (keys.h) and the user key file.
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
	_cleanup_close_ int fd = -1;
	/* 64 digits, an optional newline, and one byte to see excess. */
	char buf[VMF_HASH_HEX_LEN + 2];
	uint8_t key[CRYPTO_KEY_LEN];
	struct stat st;
	ssize_t n;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	/* Like ssh: any access for group or others means the key may have
	 * been read or replaced by someone else. */
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return -EPERM;
	n = read_up_to(fd, buf, sizeof(buf));
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

/* Read a file that must hold exactly len bytes: 0, -ENOENT, -EBADMSG
 * (another size), or -errno. */
static int keys_read_exact(const char *dir, const char *name, void *out,
			   size_t len)
{
	_cleanup_free_ char *path = NULL, *buf = NULL;
	size_t got;
	int r;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	r = read_file(path, len, &buf, &got);
	if (r == -EFBIG || (r == 0 && got != len))
		r = -EBADMSG;
	if (r == 0)
		memcpy(out, buf, len);
	return r;
}

static int keys_write(const char *dir, const char *name, const void *buf,
		      size_t len)
{
	_cleanup_free_ char *path = NULL;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	return write_file_atomic(path, buf, len, 0600);
}

/* A new identity: cache.id is written first, data.key last, so a crash
 * in between leaves the state keys_destroy() leaves (no data.key), from
 * which the next open starts again. */
static int keys_data_create(const char *dir,
			    const uint8_t user_key[CRYPTO_KEY_LEN],
			    uint8_t id[CRYPTO_CACHE_ID_LEN],
			    uint8_t data_key[CRYPTO_KEY_LEN])
{
	uint8_t wrapped[CRYPTO_WRAPPED_KEY_LEN];
	int r;

	log_debug(LOG_CAT_CRYPTO, "keys %s: new cache identity", dir);
	r = crypto_random(id, CRYPTO_CACHE_ID_LEN);
	if (r == 0)
		r = crypto_random(data_key, CRYPTO_KEY_LEN);
	if (r == 0)
		r = crypto_wrap_key(user_key, id, data_key, wrapped);
	if (r == 0)
		r = keys_write(dir, KEYS_CACHE_ID, id, CRYPTO_CACHE_ID_LEN);
	if (r == 0)
		r = keys_write(dir, KEYS_DATA_KEY, wrapped, sizeof(wrapped));
	return r;
}

int keys_data_open(const char *dir, const uint8_t user_key[CRYPTO_KEY_LEN],
		   uint8_t ret_cache_id[CRYPTO_CACHE_ID_LEN],
		   uint8_t ret_data_key[CRYPTO_KEY_LEN])
{
	uint8_t id[CRYPTO_CACHE_ID_LEN], key[CRYPTO_KEY_LEN];
	uint8_t wrapped[CRYPTO_WRAPPED_KEY_LEN];
	int r, rw;

	r = keys_read_exact(dir, KEYS_CACHE_ID, id, sizeof(id));
	rw = keys_read_exact(dir, KEYS_DATA_KEY, wrapped, sizeof(wrapped));
	if (r == -EBADMSG) /* cache.id of the wrong size */
		r = -EIO;
	if ((r == 0 || r == -ENOENT) && rw == -ENOENT)
		r = keys_data_create(dir, user_key, id, key);
	else if (r == -ENOENT)
		r = -EIO; /* data.key without cache.id cannot be opened */
	else if (r == 0 && rw < 0)
		r = rw;
	else if (r == 0)
		r = crypto_unwrap_key(user_key, id, wrapped, key);
	if (r == 0) {
		memcpy(ret_cache_id, id, sizeof(id));
		memcpy(ret_data_key, key, sizeof(key));
	}
	crypto_cleanse(key, sizeof(key));
	return r;
}

int keys_destroy(const char *dir)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	uint8_t junk[CRYPTO_WRAPPED_KEY_LEN];
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
