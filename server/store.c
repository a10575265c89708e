/* SPDX-License-Identifier: MIT */
/* Content-addressed block store.
 *
 * Owns the paths DIR/blocks and DIR/tmp.  Stateless past start-up (the
 * struct holds only paths and directory fds set before threads start),
 * so any thread may call anything; the file system does the locking.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"

#include "store.h"

struct store {
	char *dir;     /* set before threads start */
	int blocks_fd; /* DIR/blocks, O_DIRECTORY */
	char *tmp_dir; /* DIR/tmp */
};

int store_open(const char *dir, struct store **ret)
{
	_cleanup_free_ char *blocks = NULL;
	struct store *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->blocks_fd = -1;
	if (asprintf(&blocks, "%s/blocks", dir) < 0 ||
	    asprintf(&s->tmp_dir, "%s/tmp", dir) < 0 ||
	    !(s->dir = strdup(dir))) {
		r = -ENOMEM;
		goto fail;
	}
	r = mkdir_p(blocks, 0700);
	if (r == 0)
		r = mkdir_p(s->tmp_dir, 0700);
	if (r < 0)
		goto fail;
	s->blocks_fd = open(blocks, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->blocks_fd < 0) {
		r = -errno;
		goto fail;
	}
	*ret = s;
	return 0;
fail:
	store_free(s);
	return r;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	closep(&s->blocks_fd);
	free(s->tmp_dir);
	free(s->dir);
	free(s);
}

const char *store_dir(const struct store *s)
{
	return s->dir;
}

/* "XX/<64 hex>" relative to blocks_fd. */
static void block_relpath(const uint8_t hash[VMF_HASH_LEN],
			  char out[3 + VMF_HASH_HEX_LEN + 1])
{
	char hex[VMF_HASH_HEX_LEN + 1];

	hash_to_hex(hash, VMF_HASH_LEN, hex);
	snprintf(out, 3 + VMF_HASH_HEX_LEN + 1, "%.2s/%s", hex, hex);
}

bool store_has(struct store *s, const uint8_t hash[VMF_HASH_LEN])
{
	char rel[3 + VMF_HASH_HEX_LEN + 1];
	struct stat st;

	if (hash_is_zero(hash))
		return true;
	block_relpath(hash, rel);
	return fstatat(s->blocks_fd, rel, &st, 0) == 0 && S_ISREG(st.st_mode);
}

int store_open_block(struct store *s, const uint8_t hash[VMF_HASH_LEN])
{
	char rel[3 + VMF_HASH_HEX_LEN + 1];
	int fd;

	block_relpath(hash, rel);
	fd = openat(s->blocks_fd, rel, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int store_mktemp(struct store *s, const char *prefix, char **ret_path)
{
	_cleanup_free_ char *path = NULL;
	int fd;

	if (asprintf(&path, "%s/%s.XXXXXX", s->tmp_dir, prefix) < 0)
		return -ENOMEM;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*ret_path = steal_ptr(&path);
	return fd;
}

static int fsync_dirat(int dirfd, const char *rel)
{
	_cleanup_close_ int fd =
	    openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	return fsync(fd) < 0 ? -errno : 0;
}

int store_gc_lock(struct store *s, bool exclusive, int *ret_fd)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;

	if (asprintf(&path, "%s/gc.lock", s->dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
		if (errno != EINTR)
			return -errno;
	*ret_fd = steal_fd(&fd);
	return 0;
}

int store_sync_dir(struct store *s, uint8_t first_byte)
{
	char sub[3];

	hash_to_hex(&first_byte, 1, sub);
	return fsync_dirat(s->blocks_fd, sub);
}

int store_put(struct store *s, const uint8_t hash[VMF_HASH_LEN],
	      const void *buf, size_t len, unsigned flags, bool *ret_created)
{
	char rel[3 + VMF_HASH_HEX_LEN + 1], sub[3];
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (hash_is_zero(hash))
		return -EINVAL;
	block_relpath(hash, rel);
	if (store_has(s, hash)) {
		/* Freshen it: an upload of a block nothing references yet
		 * must survive gc's grace period until its commit.  Best
		 * effort: a commit that finds it gone gets 409 and the
		 * client uploads it again. */
		(void)utimensat(s->blocks_fd, rel, NULL, 0);
		*ret_created = false;
		return 0;
	}
	memcpy(sub, rel, 2);
	sub[2] = '\0';
	if (mkdirat(s->blocks_fd, sub, 0700) == 0) {
		/* A new XX directory is itself a new entry in blocks/. */
		if (fsync(s->blocks_fd) < 0)
			return -errno;
	} else if (errno != EEXIST) {
		return -errno;
	}
	fd = store_mktemp(s, "block", &tmp);
	if (fd < 0)
		return fd;
	r = full_write(fd, buf, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	/* Two writers of one block race harmlessly: same name, same bytes,
	 * and rename() replaces atomically. */
	if (r == 0 && renameat(AT_FDCWD, tmp, s->blocks_fd, rel) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(tmp); /* best effort; r says what went wrong */
		return r;
	}
	/* The block must be durable before any manifest names it. */
	if (!(flags & STORE_PUT_NO_DIR_SYNC)) {
		r = fsync_dirat(s->blocks_fd, sub);
		if (r < 0)
			return r;
	}
	log_debug(LOG_CAT_STORE, "stored block %s (%zu bytes)", rel + 3, len);
	*ret_created = true;
	return 0;
}
