/* SPDX-License-Identifier: MIT */
/* Consistency check and leftover removal of a server directory (see
 * fsck.h).
 *
 * Each distinct block is read and hashed once, whatever the number of
 * versions naming it: three hash sets (marks.h) remember the blocks
 * found good, missing and corrupt.  The block sweep then counts the
 * block files in none of them.  Single-threaded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "manifest.h"
#include "util.h"

#include "fsck.h"
#include "leases.h"
#include "marks.h"
#include "store.h"
#include "versions.h"

#define ENTRY_CHUNK	   512 /* manifest entries per read */
#define REPORT_PER_VERSION 5   /* bad blocks named per version */

struct fsck {
	struct store *s;
	struct versions *v;
	const struct fsck_options *o;
	struct marks good, missing, corrupt;
	uint8_t *block; /* VMF_BLOCK_SIZE_MAX + 1 bytes */
	int64_t cutoff; /* files modified after it are young */
	struct fsck_result res;
};

static void closedirp(DIR **d)
{
	if (*d)
		(void)closedir(*d); /* read-only: nothing to report */
}

/* Read and hash one block file: 0 (good), -ENOENT, -EBADMSG (its
 * content does not hash to its name) or another -errno. */
static int verify_block(struct fsck *f, const uint8_t *h)
{
	uint8_t got[VMF_HASH_LEN];
	_cleanup_close_ int fd = -1;
	ssize_t n;
	size_t len = 0;

	fd = store_open_block(f->s, h);
	if (fd < 0)
		return fd;
	/* One byte more than a block may hold, to see an overlong file. */
	while (len <= VMF_BLOCK_SIZE_MAX) {
		n = read(fd, f->block + len, VMF_BLOCK_SIZE_MAX + 1 - len);
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > VMF_BLOCK_SIZE_MAX)
		return -EBADMSG;
	hash_sha256(f->block, len, got);
	return memcmp(got, h, VMF_HASH_LEN) == 0 ? 0 : -EBADMSG;
}

/* Classify block h (read at most once per run); *ret_bad "missing",
 * "corrupt" or NULL. */
static int check_block(struct fsck *f, const uint8_t *h, const char **ret_bad)
{
	int r;

	*ret_bad = NULL;
	if (hash_is_zero(h) || marks_has(&f->good, h))
		return 0;
	if (marks_has(&f->missing, h)) {
		*ret_bad = "missing";
		return 0;
	}
	if (marks_has(&f->corrupt, h)) {
		*ret_bad = "corrupt";
		return 0;
	}
	r = verify_block(f, h);
	if (r == 0) {
		f->res.blocks_verified++;
		return marks_add(&f->good, h);
	}
	if (r == -ENOENT) {
		f->res.missing++;
		*ret_bad = "missing";
		return marks_add(&f->missing, h);
	}
	if (r == -EBADMSG) {
		f->res.corrupt++;
		*ret_bad = "corrupt";
		return marks_add(&f->corrupt, h);
	}
	return r;
}

static int check_version(struct fsck *f, const char *name, uint64_t n)
{
	_cleanup_free_ uint8_t *buf = NULL;
	struct version_info info;
	_cleanup_close_ int fd = -1;
	uint64_t nbad = 0;
	const char *bad;
	char hex[VMF_HASH_HEX_LEN + 1];
	int r;

	fd = versions_open_manifest(f->v, name, n, false, &info);
	if (fd < 0) {
		printf("image %s version %" PRIu64 ": manifest: %s\n", name, n,
		       strerror(-fd));
		f->res.bad_files++;
		f->res.incomplete = true;
		return 0;
	}
	buf = malloc(ENTRY_CHUNK * VMF_HASH_LEN);
	if (!buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < info.hdr.nblocks; i += ENTRY_CHUNK) {
		uint64_t k = info.hdr.nblocks - i < ENTRY_CHUNK
				 ? info.hdr.nblocks - i
				 : ENTRY_CHUNK;

		r = full_pread(fd, buf, k * VMF_HASH_LEN,
			       (off_t)manifest_entry_offset(i));
		if (r < 0) {
			printf("image %s version %" PRIu64
			       ": reading the manifest: %s\n",
			       name, n, strerror(-r));
			f->res.bad_files++;
			f->res.incomplete = true;
			return 0;
		}
		for (uint64_t j = 0; j < k; j++) {
			const uint8_t *h = buf + j * VMF_HASH_LEN;

			r = check_block(f, h, &bad);
			if (r < 0)
				return r;
			if (!bad)
				continue;
			if (nbad++ < REPORT_PER_VERSION) {
				hash_to_hex(h, VMF_HASH_LEN, hex);
				printf("image %s version %" PRIu64
				       ": block %" PRIu64 " (%s) %s\n",
				       name, n, i + j, hex, bad);
			}
		}
	}
	if (nbad > 0)
		printf("image %s version %" PRIu64 ": %" PRIu64 " of %" PRIu64
		       " blocks missing or corrupt\n",
		       name, n, nbad, info.hdr.nblocks);
	f->res.versions++;
	return 0;
}

/* N of "N<suffix>" (digits, no leading zero), or 0. */
static uint64_t file_number(const char *fname, const char *suffix)
{
	size_t len = strlen(fname), slen = strlen(suffix);
	char num[21];
	uint64_t n;

	if (len <= slen || len - slen >= sizeof(num) || fname[0] == '0' ||
	    strcmp(fname + len - slen, suffix) != 0)
		return 0;
	memcpy(num, fname, len - slen);
	num[len - slen] = '\0';
	return parse_u64(num, &n) < 0 ? 0 : n;
}

/* Manifests (and their history records) numbered above current: what a
 * commit that crashed before its commit point left. */
static int check_above_current(struct fsck *f, const char *name, uint64_t cur)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *e;
	bool removed = false;
	int r;

	r = versions_image_path(f->v, name, "/versions", &path);
	if (r < 0)
		return r;
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)) != NULL) {
		uint64_t nm = file_number(e->d_name, ".manifest");
		uint64_t nj = file_number(e->d_name, ".json");

		if (nm > cur) {
			f->res.above_current++;
			printf("image %s: versions/%s above current (%" PRIu64
			       "): left by a crashed commit%s\n",
			       name, e->d_name, cur,
			       f->o->repair ? ", removed" : "");
		} else if (nj <= cur) {
			continue;
		}
		if (!f->o->repair)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT)
			return -errno;
		removed = true;
		if (nm > cur)
			f->res.above_removed++;
	}
	if (removed && fsync(dirfd(d)) < 0)
		return -errno;
	return 0;
}

static bool file_exists(struct versions *v, const char *name, const char *rest)
{
	_cleanup_free_ char *path = NULL;

	return versions_image_path(v, name, rest, &path) == 0 &&
	       access(path, F_OK) == 0;
}

static void check_json_files(struct fsck *f, const char *name)
{
	_cleanup_free_ char *path = NULL;
	struct lease l;
	json_t *j = NULL;
	int r;

	r = lease_read(f->v, name, &l);
	if (r < 0 && r != -ENOENT) {
		printf("image %s: lease.json: %s\n", name, strerror(-r));
		f->res.bad_files++;
	}
	r = versions_policy(f->v, name, &j);
	json_decref(j);
	if (r < 0) {
		printf("image %s: policy.json: %s\n", name, strerror(-r));
		f->res.bad_files++;
	}
	if (!file_exists(f->v, name, "/pins.json") ||
	    versions_image_path(f->v, name, "/pins.json", &path) < 0)
		return;
	j = json_load_file(path, 0, NULL);
	if (!json_is_object(j)) {
		printf("image %s: pins.json: not a JSON object\n", name);
		f->res.bad_files++;
	}
	json_decref(j);
}

static int check_image(struct fsck *f, const char *name)
{
	_cleanup_free_ uint64_t *nums = NULL;
	_cleanup_close_ int lock_fd = -1;
	uint64_t cur = 0;
	size_t n = 0;
	int r;

	r = versions_lock_image(f->v, name, &lock_fd);
	if (r < 0)
		return log_error_errno(r, "image %s: locking: %m", name);
	f->res.images++;
	r = versions_current(f->v, name, &cur);
	if (r < 0 && r != -ENOENT) {
		/* Which manifests are committed is unknown: touch none. */
		printf("image %s: current: %s\n", name, strerror(-r));
		f->res.bad_files++;
		f->res.incomplete = true;
		return 0;
	}
	r = check_above_current(f, name, cur);
	if (r < 0)
		return log_error_errno(r, "image %s: versions: %m", name);
	check_json_files(f, name);
	if (cur == 0)
		return 0; /* never committed */
	r = versions_numbers(f->v, name, &nums, &n);
	if (r < 0)
		return log_error_errno(r, "image %s: listing versions: %m",
				       name);
	if (n == 0 || nums[n - 1] != cur) {
		printf("image %s: current is %" PRIu64
		       ", whose manifest is missing\n",
		       name, cur);
		f->res.bad_files++;
	}
	for (size_t i = 0; i < n; i++) {
		r = check_version(f, name, nums[i]);
		if (r < 0)
			return log_error_errno(
			    r, "image %s version %" PRIu64 ": %m", name,
			    nums[i]);
	}
	return 0;
}

static int check_images(struct fsck *f)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *e;
	int r;

	if (asprintf(&path, "%s/images", store_dir(f->s)) < 0)
		return -ENOMEM;
	d = opendir(path);
	if (!d)
		return log_error_errno(-errno, "opening %s: %m", path);
	while ((e = readdir(d)) != NULL) {
		if (!image_name_valid(e->d_name) || e->d_type != DT_DIR)
			continue;
		r = check_image(f, e->d_name);
		if (r < 0)
			return r;
	}
	return 0;
}

/* True if name is a block file's name in blocks/sub; its hash into h. */
static int sweep_subdir(struct fsck *f, int blocks_fd, const char *sub)
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
		if (!marks_block_name(sub, e->d_name, h) ||
		    marks_has(&f->good, h) || marks_has(&f->corrupt, h))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			0 ||
		    !S_ISREG(st.st_mode))
			continue;
		f->res.unref_blocks++;
		f->res.unref_bytes += (uint64_t)st.st_size;
		if ((int64_t)st.st_mtime > f->cutoff) {
			f->res.unref_young++;
			continue;
		}
		if (!f->o->repair || f->res.incomplete)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) < 0)
			return errno == ENOENT ? 0 : -errno;
		removed = true;
		f->res.unref_removed++;
		f->res.unref_removed_bytes += (uint64_t)st.st_size;
	}
	if (removed && fsync(dirfd(d)) < 0)
		return -errno;
	return 0;
}

static int sweep_blocks(struct fsck *f)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *e;
	int r;

	if (asprintf(&path, "%s/blocks", store_dir(f->s)) < 0)
		return -ENOMEM;
	d = opendir(path);
	if (!d)
		return log_error_errno(-errno, "opening %s: %m", path);
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;

		if (strlen(n) != 2 || hash_from_hex(n, (uint8_t[1]){0}, 1) < 0)
			continue;
		r = sweep_subdir(f, dirfd(d), n);
		if (r < 0)
			return log_error_errno(r, "sweeping %s/%s: %m", path,
					       n);
	}
	return 0;
}

static int sweep_tmp(struct fsck *f)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *e;
	struct stat st;

	if (asprintf(&path, "%s/tmp", store_dir(f->s)) < 0)
		return -ENOMEM;
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d)) != NULL) {
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			0 ||
		    !S_ISREG(st.st_mode))
			continue;
		f->res.tmp_files++;
		f->res.tmp_bytes += (uint64_t)st.st_size;
		if (!f->o->repair || (int64_t)st.st_mtime > f->cutoff)
			continue;
		if (unlinkat(dirfd(d), e->d_name, 0) < 0)
			continue; /* gone meanwhile: an upload finished */
		f->res.tmp_removed++;
		f->res.tmp_removed_bytes += (uint64_t)st.st_size;
	}
	return 0;
}

int fsck_run(struct store *s, struct versions *v, const struct fsck_options *o,
	     struct fsck_result *ret)
{
	struct fsck f = {.s = s, .v = v, .o = o};
	_cleanup_close_ int gc_fd = -1;
	int r;

	/* Exclusive to repair, as gc: no commit is between checking its
	 * blocks and its commit point while blocks are removed.  Shared
	 * to check: gc does not remove blocks under our feet. */
	r = store_gc_lock(s, o->repair, &gc_fd);
	if (r < 0)
		return log_error_errno(r, "taking %s/gc.lock: %m",
				       store_dir(s));
	f.block = malloc(VMF_BLOCK_SIZE_MAX + 1);
	if (!f.block) {
		r = log_oom();
		goto out;
	}
	f.cutoff = now_wall() - o->grace;
	r = check_images(&f);
	if (r < 0)
		goto out;
	if (f.res.incomplete && o->repair)
		printf("some manifests could not be read: no block removed\n");
	r = sweep_blocks(&f);
	if (r < 0)
		goto out;
	r = sweep_tmp(&f);
	if (r < 0) {
		log_error_errno(r, "sweeping %s/tmp: %m", store_dir(s));
		goto out;
	}
	*ret = f.res;
out:
	free(f.block);
	marks_fini(&f.good);
	marks_fini(&f.missing);
	marks_fini(&f.corrupt);
	return r;
}
