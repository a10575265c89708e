/* SPDX-License-Identifier: MIT */
/* Mark and sweep of DIR/blocks (see gc.h).
 *
 * The marks (marks.h) hold every distinct block a kept version names.
 * Single-threaded.
 */
#include <dirent.h>
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
#include "manifest.h"
#include "util.h"

#include "gc.h"
#include "marks.h"
#include "retention.h"
#include "store.h"
#include "versions.h"

#define MARK_CHUNK 512 /* manifest entries per read, on the heap */

/* Mark every block version n of name names. */
static int mark_version(struct versions *v, const char *name, uint64_t n,
			struct marks *m)
{
	_cleanup_free_ uint8_t *buf = NULL;
	struct version_info info;
	_cleanup_close_ int fd = -1;
	int r;

	fd = versions_open_manifest(v, name, n, false, &info);
	if (fd < 0)
		return fd;
	buf = malloc(MARK_CHUNK * VMF_HASH_LEN);
	if (!buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < info.hdr.nblocks; i += MARK_CHUNK) {
		uint64_t k = info.hdr.nblocks - i < MARK_CHUNK
				 ? info.hdr.nblocks - i
				 : MARK_CHUNK;

		r = full_pread(fd, buf, k * VMF_HASH_LEN,
			       (off_t)manifest_entry_offset(i));
		if (r < 0)
			return r;
		for (uint64_t j = 0; j < k; j++) {
			r = marks_add(m, buf + j * VMF_HASH_LEN);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Step 1 for one image, under its lock. */
static int mark_image(struct versions *v, const char *name,
		      const struct gc_options *o, struct marks *m,
		      struct gc_result *res)
{
	struct retention_plan p = {0};
	_cleanup_close_ int lock_fd = -1;
	int r;

	r = versions_lock_image(v, name, &lock_fd);
	if (r < 0)
		return log_error_errno(r, "image %s: locking: %m", name);
	r = retention_plan(v, name, o->keep_versions, &p);
	if (r < 0)
		return log_error_errno(r, "image %s: retention: %m", name);
	if (!o->dry_run) {
		r = retention_drop(v, name, &p);
		if (r < 0) {
			log_error_errno(r, "image %s: dropping versions: %m",
					name);
			goto out;
		}
	}
	for (size_t i = 0; i < p.nkeep; i++) {
		r = mark_version(v, name, p.keep[i], m);
		if (r < 0) {
			log_error_errno(r,
					"image %s version %llu: reading "
					"its manifest: %m",
					name, (unsigned long long)p.keep[i]);
			goto out;
		}
	}
	res->versions_kept += p.nkeep;
	res->versions_dropped += p.ndrop;
	if (p.ndrop > 0)
		log_info("image %s: %s versions %llu to %llu (%zu), keeping "
			 "%zu",
			 name, o->dry_run ? "would drop" : "dropped",
			 (unsigned long long)p.drop[0],
			 (unsigned long long)p.drop[p.ndrop - 1], p.ndrop,
			 p.nkeep);
out:
	retention_plan_fini(&p);
	return r;
}

static void closedirp(DIR **d)
{
	if (*d)
		(void)closedir(*d); /* read-only: nothing to report */
}

/* Step 2 in one blocks/XX directory. */
static int sweep_subdir(int blocks_fd, const char *sub, const struct marks *m,
			const struct gc_options *o, int64_t cutoff,
			struct gc_result *res)
{
	_cleanup_(closedirp) DIR *d = NULL;
	uint8_t h[VMF_HASH_LEN];
	struct dirent *e;
	struct stat st;
	bool removed = false;
	int fd;

	fd = openat(blocks_fd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		int r = -errno;

		close(fd);
		return r;
	}
	while ((e = readdir(d)) != NULL) {
		if (!marks_block_name(sub, e->d_name, h))
			continue; /* not a block: not ours to remove */
		if (marks_has(m, h)) {
			res->blocks_kept++;
			continue;
		}
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) <
		    0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		if ((int64_t)st.st_mtime > cutoff) {
			res->blocks_young++;
			continue;
		}
		if (!o->dry_run && unlinkat(dirfd(d), e->d_name, 0) < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		removed = true;
		res->blocks_removed++;
		res->bytes_removed += (uint64_t)st.st_size;
	}
	if (removed && !o->dry_run && fsync(dirfd(d)) < 0)
		return -errno;
	return 0;
}

static int sweep_blocks(const char *dir, const struct marks *m,
			const struct gc_options *o, int64_t cutoff,
			struct gc_result *res)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *e;
	int r;

	if (asprintf(&path, "%s/blocks", dir) < 0)
		return -ENOMEM;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;

		if (strlen(n) != 2 || hash_from_hex(n, (uint8_t[1]){0}, 1) < 0)
			continue;
		r = sweep_subdir(dirfd(d), n, m, o, cutoff, res);
		if (r < 0)
			return log_error_errno(r, "sweeping %s/%s: %m", path,
					       n);
	}
	return 0;
}

/* Step 3: leftovers in DIR/tmp (crashed uploads, abandoned blocks). */
static int clean_tmp(const char *dir, const struct gc_options *o,
		     int64_t cutoff, struct gc_result *res)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *e;
	struct stat st;

	if (asprintf(&path, "%s/tmp", dir) < 0)
		return -ENOMEM;
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)) != NULL) {
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			0 ||
		    !S_ISREG(st.st_mode) || (int64_t)st.st_mtime > cutoff)
			continue;
		if (!o->dry_run && unlinkat(dirfd(d), e->d_name, 0) < 0)
			continue; /* gone meanwhile, or not ours: skip */
		res->tmp_removed++;
		res->tmp_bytes += (uint64_t)st.st_size;
	}
	return 0;
}

int gc_run(struct store *s, struct versions *v, const struct gc_options *o,
	   struct gc_result *ret)
{
	struct gc_result res = {0};
	struct marks m = {0};
	_cleanup_close_ int gc_fd = -1;
	char **names = NULL;
	size_t n = 0;
	int64_t cutoff;
	int r;

	r = store_gc_lock(s, true, &gc_fd);
	if (r < 0)
		return log_error_errno(r, "taking %s/gc.lock: %m",
				       store_dir(s));
	r = versions_names(v, &names, &n);
	if (r < 0) {
		log_error_errno(r, "listing images: %m");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		r = mark_image(v, names[i], o, &m, &res);
		if (r < 0)
			goto out; /* logged; the marks are incomplete */
		res.images++;
	}
	/* Commits wait on gc.lock, so the marks cover every committed
	 * version; the grace covers uploads made for commits to come. */
	cutoff = now_wall() - o->grace;
	r = sweep_blocks(store_dir(s), &m, o, cutoff, &res);
	if (r < 0)
		goto out;
	r = clean_tmp(store_dir(s), o, cutoff, &res);
	if (r < 0) {
		log_error_errno(r, "cleaning %s/tmp: %m", store_dir(s));
		goto out;
	}
	*ret = res;
out:
	versions_names_free(names, n);
	marks_fini(&m);
	return r;
}
