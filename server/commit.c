/* SPDX-License-Identifier: MIT */
/* The atomic, idempotent commit of a new image version.
 *
 * Owns DIR/commits and the writing side of DIR/images.  The on-disk
 * protocol, in order, each step durable before the next:
 *   1. the upload (in DIR/tmp) is checked: it parses, every block it
 *      names is in the store;
 *   2. flock(images/NAME/lock); the commit record is looked up (a retry
 *      is answered from it) and the base version checked;
 *   2b. the lease is checked (leases.h), if the caller asks;
 *   3. the upload gets version N = current + 1 and is renamed to
 *      versions/N.manifest; versions/N.json records the change
 *      (history.h);
 *   4. commits/ID is written (image, N, digest of the upload);
 *   5. `current` is replaced with N: the commit point.
 * A crash before 5 leaves current as it was; a record left by a crash
 * between 4 and 5 names a version that is not (or not this) manifest,
 * and is ignored by the retry, which then commits normally.
 *
 * The flock() serialises commits to one image across threads (each
 * opens its own file description) and processes (import next to
 * serve).  Before it, steps 1 to 5 hold DIR/gc.lock shared, so gc
 * (exclusive) never sweeps a block between its check and the commit
 * point.  After step 5 the image's old versions beyond its retention
 * are dropped (retention.h), still under the image lock.  No mutex is
 * held while waiting for either lock.
 */
#include <errno.h>
#include <fcntl.h>
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
#include "util.h"

#include "commit.h"
#include "history.h"
#include "leases.h"
#include "retention.h"
#include "store.h"
#include "versions.h"

#define SCAN_CHUNK (512 * VMF_HASH_LEN) /* on the stack */

void commit_result_fini(struct commit_result *res)
{
	free(res->missing_list);
	res->missing_list = NULL;
	res->missing_listed = 0;
}

bool commit_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n < COMMIT_ID_MIN || n > COMMIT_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Note a missing hash in res's list, unless it is there or full. */
static int list_missing(struct commit_result *res, const uint8_t *h)
{
	if (res->missing_listed == VMF_MISSING_LIST_MAX)
		return 0;
	for (size_t i = 0; i < res->missing_listed; i++)
		if (memcmp(res->missing_list + i * VMF_HASH_LEN, h,
			   VMF_HASH_LEN) == 0)
			return 0;
	if (!res->missing_list) {
		res->missing_list = malloc(VMF_MISSING_LIST_MAX * VMF_HASH_LEN);
		if (!res->missing_list)
			return -ENOMEM;
	}
	memcpy(res->missing_list + res->missing_listed++ * VMF_HASH_LEN, h,
	       VMF_HASH_LEN);
	return 0;
}

/* Step 1: check the upload; count the blocks it names that the store
 * lacks (listing the first ones in res), and compute its digest with
 * the version field zeroed. */
static int scan_upload(struct versions *v, int fd, struct manifest_header *ret,
		       uint8_t digest[VMF_HASH_LEN], struct commit_result *res)
{
	uint8_t buf[SCAN_CHUNK];
	struct manifest_header h;
	uint64_t off, size;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	size = (uint64_t)st.st_size;
	r = versions_read_header(fd, size, &h);
	if (r < 0)
		return r;
	for (off = MANIFEST_HEADER_SIZE; off < size; off += SCAN_CHUNK) {
		size_t n = size - off < SCAN_CHUNK ? size - off : SCAN_CHUNK;

		r = full_pread(fd, buf, n, (off_t)off);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i += VMF_HASH_LEN) {
			if (store_has(versions_store(v), buf + i))
				continue;
			res->missing++;
			r = list_missing(res, buf + i);
			if (r < 0)
				return r;
		}
	}
	r = versions_digest(fd, size, true, digest);
	if (r < 0)
		return r;
	*ret = h;
	return 0;
}

/* Normalised digest of committed version n of name. */
static int version_digest(struct versions *v, const char *name, uint64_t n,
			  uint8_t out[VMF_HASH_LEN])
{
	struct version_info info;
	_cleanup_close_ int fd =
	    versions_open_manifest(v, name, n, false, &info);

	if (fd < 0)
		return fd;
	return versions_digest(fd, info.manifest_size, true, out);
}

/* Step 2: was this commit id committed before?  Sets *ret_version to
 * the version it made (0: not, or a stale record); -EEXIST if the id
 * was used for something else. */
static int check_record(struct versions *v, const struct commit_request *req,
			const uint8_t digest[VMF_HASH_LEN], uint64_t current,
			uint64_t *ret_version)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	_cleanup_(json_decrefp) json_t *rec = NULL;
	const char *image, *hex;
	uint8_t want[VMF_HASH_LEN], have[VMF_HASH_LEN];
	json_int_t n;
	size_t len;
	int r;

	*ret_version = 0;
	if (asprintf(&path, "%s/%s", versions_commits_dir(v), req->commit_id) <
	    0)
		return -ENOMEM;
	r = read_file(path, VMF_JSON_MAX, &text, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	rec = json_loadb(text, len, 0, NULL);
	if (!rec ||
	    json_unpack(rec, "{s:s, s:I, s:s}", "image", &image, "version", &n,
			"manifest_sha256", &hex) < 0 ||
	    hash_from_hex(hex, want, VMF_HASH_LEN) < 0 || n <= 0) {
		log_warn("commit record %s is corrupt; ignoring it", path);
		return 0;
	}
	if (strcmp(image, req->name) != 0 ||
	    memcmp(want, digest, VMF_HASH_LEN) != 0)
		return -EEXIST;
	if ((uint64_t)n > current)
		return 0; /* crashed before its commit point */
	r = version_digest(v, req->name, (uint64_t)n, have);
	if (r < 0 || memcmp(have, digest, VMF_HASH_LEN) != 0)
		return 0; /* someone else's version n: the record is stale */
	*ret_version = (uint64_t)n;
	return 0;
}

static int write_record(struct versions *v, const struct commit_request *req,
			uint64_t n, const uint8_t digest[VMF_HASH_LEN])
{
	_cleanup_(json_decrefp) json_t *rec = NULL;
	_cleanup_free_ char *path = NULL, *text = NULL;
	char hex[VMF_HASH_HEX_LEN + 1];

	hash_to_hex(digest, VMF_HASH_LEN, hex);
	rec = json_pack("{s:s, s:I, s:s, s:I}", "image", req->name, "version",
			(json_int_t)n, "manifest_sha256", hex, "time",
			(json_int_t)now_wall());
	if (!rec)
		return -ENOMEM;
	text = json_dumps(rec, JSON_SORT_KEYS);
	if (!text || asprintf(&path, "%s/%s", versions_commits_dir(v),
			      req->commit_id) < 0)
		return -ENOMEM;
	return write_file_atomic(path, text, strlen(text), 0600);
}

/* Step 3: number the upload n and move it into versions/. */
static int install_manifest(struct versions *v, const char *name, int fd,
			    const char *tmp_path, struct manifest_header *h,
			    uint64_t n)
{
	uint8_t hdr[MANIFEST_HEADER_SIZE];
	_cleanup_free_ char *path = NULL;
	int r;

	r = versions_manifest_path(v, name, n, &path);
	if (r < 0)
		return r;
	h->version = n;
	manifest_header_encode(h, hdr);
	r = full_pwrite(fd, hdr, sizeof(hdr), 0);
	if (r < 0)
		return r;
	if (fsync(fd) < 0)
		return -errno;
	/* Replaces a leftover n.manifest of a crashed commit, if any. */
	if (rename(tmp_path, path) < 0)
		return -errno;
	return fsync_parent_dir(path);
}

static int write_current(struct versions *v, const char *name, uint64_t n)
{
	_cleanup_free_ char *path = NULL;
	char text[32];
	int r;

	r = versions_image_path(v, name, "/current", &path);
	if (r < 0)
		return r;
	snprintf(text, sizeof(text), "%llu\n", (unsigned long long)n);
	return write_file_atomic(path, text, strlen(text), 0600);
}

/* Steps 2 to 5, under the image lock. */
static int commit_locked(struct versions *v, const struct commit_request *req,
			 int fd, const char *tmp_path,
			 struct manifest_header *h,
			 const uint8_t digest[VMF_HASH_LEN],
			 struct commit_result *res, bool *ret_installed)
{
	uint64_t current = 0, n;
	int r;

	r = versions_current(v, req->name, &current);
	if (r < 0 && r != -ENOENT)
		return r;
	if (req->commit_id) {
		r = check_record(v, req, digest, current, &n);
		if (r < 0)
			return r;
		if (n > 0) {
			res->version = n;
			res->replayed = true;
			return 0;
		}
	}
	if (req->check_lease) {
		r = lease_check_commit(v, req->name, req->lease_id, now_wall(),
				       &res->lease, &res->lease_live);
		if (r < 0)
			return r;
	}
	if (req->base != COMMIT_BASE_ANY && req->base != current) {
		res->current = current;
		return -ESTALE;
	}
	n = current + 1;
	r = install_manifest(v, req->name, fd, tmp_path, h, n);
	if (r < 0)
		return r;
	*ret_installed = true;
	r = history_record(v, req->name, n, fd, h, req->author);
	if (r < 0)
		return r;
	if (req->commit_id) {
		r = write_record(v, req, n, digest);
		if (r < 0)
			return r;
	}
	r = write_current(v, req->name, n);
	if (r < 0)
		return r;
	res->version = n;
	if (req->keep_versions > 0) {
		/* The commit is done; a failed clean-up only delays it. */
		r = retention_apply(v, req->name, req->keep_versions, NULL);
		if (r < 0)
			log_warn_errno(r, "image %s: dropping old versions: %m",
				       req->name);
	}
	return 0;
}

int commit_manifest(struct versions *v, const struct commit_request *req,
		    int fd, const char *tmp_path, struct commit_result *ret)
{
	struct commit_result res = {0};
	struct manifest_header h;
	uint8_t digest[VMF_HASH_LEN];
	_cleanup_close_ int lock_fd = -1, gc_fd = -1;
	bool installed = false;
	int r;

	if (!image_name_valid(req->name) ||
	    (req->commit_id && !commit_id_valid(req->commit_id))) {
		r = -EINVAL;
		goto out;
	}
	/* Shared with other commits, exclusive with gc: the blocks found
	 * present here stay until the manifest naming them is committed. */
	r = store_gc_lock(versions_store(v), false, &gc_fd);
	if (r < 0)
		goto out;
	r = scan_upload(v, fd, &h, digest, &res);
	if (r < 0)
		goto out;
	if (res.missing > 0) {
		r = -ENODATA;
		goto out;
	}
	r = versions_lock_image(v, req->name, &lock_fd);
	if (r < 0)
		goto out;
	r = commit_locked(v, req, fd, tmp_path, &h, digest, &res, &installed);
out:
	if (!installed)
		(void)unlink(tmp_path); /* the upload is spent either way */
	if (r == 0 || r == -ENODATA || r == -EBUSY || r == -ESTALE)
		*ret = res; /* hands the missing list on */
	else
		commit_result_fini(&res);
	if (r == 0 && !res.replayed)
		log_debug(LOG_CAT_STORE, "committed %s version %llu", req->name,
			  (unsigned long long)res.version);
	return r;
}
