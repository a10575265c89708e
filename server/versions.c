/* SPDX-License-Identifier: MIT */
/* Images, versions and the atomic, idempotent commit.
 *
 * Owns DIR/images and DIR/commits, and a small cache of manifest
 * digests (ETags), protected by v->lock.  The on-disk protocol of a
 * commit, in order, each step durable before the next:
 *   1. the upload (in DIR/tmp) is checked: it parses, every block it
 *      names is in the store;
 *   2. flock(images/NAME/lock); the commit record is looked up (a retry
 *      is answered from it) and the base version checked;
 *   3. the upload gets version N = current + 1 and is renamed to
 *      versions/N.manifest;
 *   4. commits/ID is written (image, N, digest of the upload);
 *   5. `current` is replaced with N: the commit point.
 * A crash before 5 leaves current as it was; a record left by a crash
 * between 4 and 5 names a version that is not (or not this) manifest,
 * and is ignored by the retry, which then commits normally.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "util.h"

#include "store.h"
#include "versions.h"

#define ETAG_CACHE_SIZE 128
#define SCAN_CHUNK	(2048 * VMF_HASH_LEN)
#define CURRENT_MAX	32

struct etag_entry {
	char name[VMF_NAME_MAX + 1]; /* "" when unused */
	uint64_t version;
	uint8_t sha256[VMF_HASH_LEN];
};

struct versions {
	char *images;	      /* DIR/images; set before threads start */
	char *commits;	      /* DIR/commits */
	struct store *store;  /* borrowed */
	pthread_mutex_t lock; /* protects etags and etag_next */
	struct etag_entry etags[ETAG_CACHE_SIZE];
	unsigned etag_next; /* round-robin replacement */
};

static void lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) != 0)
		abort();
}

static void unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
		abort();
}

int versions_open(const char *dir, struct store *s, struct versions **ret)
{
	struct versions *v = calloc(1, sizeof(*v));
	int r;

	if (!v)
		return -ENOMEM;
	v->store = s;
	if (asprintf(&v->images, "%s/images", dir) < 0 ||
	    asprintf(&v->commits, "%s/commits", dir) < 0) {
		r = -ENOMEM;
		goto fail;
	}
	r = mkdir_p(v->images, 0700);
	if (r == 0)
		r = mkdir_p(v->commits, 0700);
	if (r < 0)
		goto fail;
	if (pthread_mutex_init(&v->lock, NULL) != 0)
		abort();
	*ret = v;
	return 0;
fail:
	free(v->images);
	free(v->commits);
	free(v);
	return r;
}

void versions_free(struct versions *v)
{
	if (!v)
		return;
	if (pthread_mutex_destroy(&v->lock) != 0)
		abort();
	free(v->images);
	free(v->commits);
	free(v);
}

bool versions_commit_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n < VERSIONS_COMMIT_ID_MIN || n > VERSIONS_COMMIT_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* images/NAME + rest; name must be valid (it becomes a path). */
static int image_path(struct versions *v, const char *name, const char *rest,
		      char **ret)
{
	if (!image_name_valid(name))
		return -EINVAL;
	if (asprintf(ret, "%s/%s%s", v->images, name, rest) < 0)
		return -ENOMEM;
	return 0;
}

static int manifest_path(struct versions *v, const char *name, uint64_t n,
			 char **ret)
{
	char rest[64];

	snprintf(rest, sizeof(rest), "/versions/%llu.manifest",
		 (unsigned long long)n);
	return image_path(v, name, rest, ret);
}

int versions_current(struct versions *v, const char *name, uint64_t *ret)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	uint64_t n;
	int r;

	r = image_path(v, name, "/current", &path);
	if (r < 0)
		return r;
	r = read_file(path, CURRENT_MAX, &text, NULL);
	if (r == -EFBIG)
		return -EBADMSG;
	if (r < 0)
		return r;
	strip_trailing_space(text);
	if (parse_u64(text, &n) < 0 || n == 0)
		return -EBADMSG;
	*ret = n;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void versions_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void closedirp(DIR **d)
{
	if (*d)
		(void)closedir(*d); /* read-only: nothing to report */
}

int versions_names(struct versions *v, char ***ret_names, size_t *ret_n)
{
	_cleanup_(closedirp) DIR *d = opendir(v->images);
	char **names = NULL, **grown;
	size_t n = 0;
	struct dirent *e;
	uint64_t cur;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (!image_name_valid(e->d_name) ||
		    versions_current(v, e->d_name, &cur) < 0)
			continue;
		grown = realloc(names, (n + 1) * sizeof(*names));
		if (!grown)
			goto oom;
		names = grown;
		names[n] = strdup(e->d_name);
		if (!names[n])
			goto oom;
		n++;
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_str);
	*ret_names = names;
	*ret_n = n;
	return 0;
oom:
	versions_names_free(names, n);
	return -ENOMEM;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* N of "N.manifest", or 0. */
static uint64_t manifest_number(const char *fname)
{
	_cleanup_free_ char *s = strdup(fname);
	char *dot = s ? strchr(s, '.') : NULL;
	uint64_t n;

	if (!dot || strcmp(dot, ".manifest") != 0)
		return 0;
	*dot = '\0';
	if (s[0] == '0' || parse_u64(s, &n) < 0)
		return 0;
	return n;
}

int versions_numbers(struct versions *v, const char *name, uint64_t **ret,
		     size_t *ret_n)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ uint64_t *nums = NULL;
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *e;
	uint64_t cur, *grown;
	size_t n = 0;
	int r;

	r = versions_current(v, name, &cur);
	if (r < 0)
		return r;
	r = image_path(v, name, "/versions", &path);
	if (r < 0)
		return r;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		uint64_t num = manifest_number(e->d_name);

		if (num == 0 || num > cur) /* above current: not committed */
			continue;
		grown = realloc(nums, (n + 1) * sizeof(*nums));
		if (!grown)
			return -ENOMEM;
		nums = grown;
		nums[n++] = num;
	}
	if (n > 0)
		qsort(nums, n, sizeof(*nums), cmp_u64);
	*ret = steal_ptr(&nums);
	*ret_n = n;
	return 0;
}

static void md_ctx_freep(EVP_MD_CTX **c)
{
	EVP_MD_CTX_free(*c);
}

/* SHA-256 of a manifest file of size bytes; with zero_version, as if
 * its version field were 0 (the digest of what was uploaded). */
static int digest_manifest(int fd, uint64_t size, bool zero_version,
			   uint8_t out[VMF_HASH_LEN])
{
	_cleanup_(md_ctx_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	_cleanup_free_ uint8_t *buf = malloc(SCAN_CHUNK);
	uint64_t off = 0;
	int r;

	if (!md || !buf)
		return -ENOMEM;
	if (!EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		return -EIO;
	while (off < size) {
		size_t n = size - off < SCAN_CHUNK ? size - off : SCAN_CHUNK;

		r = full_pread(fd, buf, n, (off_t)off);
		if (r < 0)
			return r;
		if (off == 0 && zero_version && n >= MANIFEST_HEADER_SIZE)
			memset(buf + 32, 0, 8); /* the version field */
		if (!EVP_DigestUpdate(md, buf, n))
			return -EIO;
		off += n;
	}
	if (!EVP_DigestFinal_ex(md, out, NULL))
		return -EIO;
	return 0;
}

/* Read and check the header of a manifest file of size bytes. */
static int read_header(int fd, uint64_t size, struct manifest_header *ret)
{
	uint8_t buf[MANIFEST_HEADER_SIZE];
	struct manifest_header h;
	int r;

	if (size < MANIFEST_HEADER_SIZE)
		return -EBADMSG;
	r = full_pread(fd, buf, sizeof(buf), 0);
	if (r < 0)
		return r;
	r = manifest_header_parse(buf, sizeof(buf), &h);
	if (r < 0)
		return r;
	if (manifest_encoded_size(&h) != size)
		return -EBADMSG;
	*ret = h;
	return 0;
}

static bool etag_lookup(struct versions *v, const char *name, uint64_t n,
			uint8_t out[VMF_HASH_LEN])
{
	bool found = false;

	lock(&v->lock);
	for (unsigned i = 0; i < ETAG_CACHE_SIZE && !found; i++) {
		struct etag_entry *e = &v->etags[i];

		if (e->version == n && strcmp(e->name, name) == 0) {
			memcpy(out, e->sha256, VMF_HASH_LEN);
			found = true;
		}
	}
	unlock(&v->lock);
	return found;
}

static void etag_insert(struct versions *v, const char *name, uint64_t n,
			const uint8_t sha[VMF_HASH_LEN])
{
	struct etag_entry *e;

	lock(&v->lock);
	e = &v->etags[v->etag_next];
	v->etag_next = (v->etag_next + 1) % ETAG_CACHE_SIZE;
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->version = n;
	memcpy(e->sha256, sha, VMF_HASH_LEN);
	unlock(&v->lock);
}

int versions_open_manifest(struct versions *v, const char *name, uint64_t n,
			   bool want_sha256, struct version_info *ret)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	struct version_info info = {0};
	uint64_t cur;
	struct stat st;
	int r;

	r = versions_current(v, name, &cur);
	if (r < 0)
		return r;
	if (n == 0 || n > cur)
		return -ENOENT;
	r = manifest_path(v, name, n, &path);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	info.manifest_size = (uint64_t)st.st_size;
	r = read_header(fd, info.manifest_size, &info.hdr);
	if (r < 0)
		return r;
	if (info.hdr.version != n)
		return -EBADMSG;
	if (want_sha256 && !etag_lookup(v, name, n, info.sha256)) {
		/* Computed outside the lock; two threads may both do it. */
		r = digest_manifest(fd, info.manifest_size, false, info.sha256);
		if (r < 0)
			return r;
		etag_insert(v, name, n, info.sha256);
	}
	*ret = info;
	return steal_fd(&fd);
}

int versions_policy(struct versions *v, const char *name, json_t **ret)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	json_t *j;
	size_t len;
	int r;

	r = image_path(v, name, "/policy.json", &path);
	if (r < 0)
		return r;
	r = read_file(path, VMF_JSON_MAX, &text, &len);
	if (r == -ENOENT) {
		j = json_object();
		if (!j)
			return -ENOMEM;
		*ret = j;
		return 0;
	}
	if (r < 0)
		return r == -EFBIG ? -EBADMSG : r;
	j = json_loadb(text, len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -EBADMSG;
	}
	*ret = j;
	return 0;
}

/* Step 1: check the upload; count the blocks it names that the store
 * lacks, and compute its digest with the version field zeroed. */
static int scan_upload(struct versions *v, int fd, struct manifest_header *ret,
		       uint8_t digest[VMF_HASH_LEN], uint64_t *ret_missing)
{
	_cleanup_free_ uint8_t *buf = malloc(SCAN_CHUNK);
	struct manifest_header h;
	uint64_t missing = 0, off, size;
	struct stat st;
	int r;

	if (!buf)
		return -ENOMEM;
	if (fstat(fd, &st) < 0)
		return -errno;
	size = (uint64_t)st.st_size;
	r = read_header(fd, size, &h);
	if (r < 0)
		return r;
	for (off = MANIFEST_HEADER_SIZE; off < size; off += SCAN_CHUNK) {
		size_t n = size - off < SCAN_CHUNK ? size - off : SCAN_CHUNK;

		r = full_pread(fd, buf, n, (off_t)off);
		if (r < 0)
			return r;
		for (size_t i = 0; i < n; i += VMF_HASH_LEN)
			missing += !store_has(v->store, buf + i);
	}
	r = digest_manifest(fd, size, true, digest);
	if (r < 0)
		return r;
	*ret = h;
	*ret_missing = missing;
	return 0;
}

static int lock_image(struct versions *v, const char *name, int *ret_fd)
{
	_cleanup_free_ char *dir = NULL, *path = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	r = image_path(v, name, "/versions", &dir);
	if (r == 0)
		r = image_path(v, name, "/lock", &path);
	if (r < 0)
		return r;
	r = mkdir_p(dir, 0700);
	if (r < 0)
		return r;
	/* images/NAME may be new: make its entry in images/ durable. */
	r = fsync_parent_dir(dir);
	if (r == 0)
		r = fsync_parent_dir(v->images);
	if (r < 0)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return -errno;
	*ret_fd = steal_fd(&fd);
	return 0;
}

/* Normalised digest of committed version n of name. */
static int version_digest(struct versions *v, const char *name, uint64_t n,
			  uint8_t out[VMF_HASH_LEN])
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	r = manifest_path(v, name, n, &path);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	return digest_manifest(fd, (uint64_t)st.st_size, true, out);
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
	if (asprintf(&path, "%s/%s", v->commits, req->commit_id) < 0)
		return -ENOMEM;
	r = read_file(path, VMF_JSON_MAX, &text, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	rec = json_loadb(text, len, 0, NULL);
	if (!rec || json_unpack(rec, "{s:s, s:I, s:s}", "image", &image,
				"version", &n, "manifest_sha256", &hex) < 0 ||
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
	if (!text || asprintf(&path, "%s/%s", v->commits, req->commit_id) < 0)
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

	r = manifest_path(v, name, n, &path);
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

	r = image_path(v, name, "/current", &path);
	if (r < 0)
		return r;
	snprintf(text, sizeof(text), "%llu\n", (unsigned long long)n);
	return write_file_atomic(path, text, strlen(text), 0600);
}

/* Steps 2 to 5, under the image lock. */
static int commit_locked(struct versions *v, const struct commit_request *req,
			 int fd, const char *tmp_path, struct manifest_header *h,
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
	if (req->base != VERSIONS_BASE_ANY && req->base != current) {
		res->current = current;
		return -ESTALE;
	}
	n = current + 1;
	r = install_manifest(v, req->name, fd, tmp_path, h, n);
	if (r < 0)
		return r;
	*ret_installed = true;
	if (req->commit_id) {
		r = write_record(v, req, n, digest);
		if (r < 0)
			return r;
	}
	r = write_current(v, req->name, n);
	if (r < 0)
		return r;
	res->version = n;
	return 0;
}

int versions_commit(struct versions *v, const struct commit_request *req,
		    int fd, const char *tmp_path, struct commit_result *ret)
{
	struct commit_result res = {0};
	struct manifest_header h;
	uint8_t digest[VMF_HASH_LEN];
	_cleanup_close_ int lock_fd = -1;
	bool installed = false;
	int r;

	if (!image_name_valid(req->name) ||
	    (req->commit_id && !versions_commit_id_valid(req->commit_id))) {
		r = -EINVAL;
		goto out;
	}
	r = scan_upload(v, fd, &h, digest, &res.missing);
	if (r < 0)
		goto out;
	if (res.missing > 0) {
		r = -ENODATA;
		goto out;
	}
	r = lock_image(v, req->name, &lock_fd);
	if (r < 0)
		goto out;
	r = commit_locked(v, req, fd, tmp_path, &h, digest, &res, &installed);
out:
	if (!installed)
		(void)unlink(tmp_path); /* the upload is spent either way */
	if (r == 0 || r == -ENODATA || r == -ESTALE)
		*ret = res;
	if (r == 0 && !res.replayed)
		log_debug(LOG_CAT_STORE, "committed %s version %llu", req->name,
			  (unsigned long long)res.version);
	return r;
}
