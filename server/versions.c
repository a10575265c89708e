/* SPDX-License-Identifier: MIT */
/* Images and versions: reading them.
 *
 * Owns DIR/images (commit.c writes into it through the helpers below)
 * and a small cache of manifest digests (ETags), protected by v->lock.
 * Readers take no other lock: a version is immutable once `current`
 * names it, and `current` is replaced atomically.
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

#include "mutex.h"
#include "versions.h"

#define ETAG_CACHE_SIZE 128
#define SCAN_CHUNK	(512 * VMF_HASH_LEN) /* on the stack */
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

int versions_image_path(struct versions *v, const char *name, const char *rest,
			char **ret)
{
	if (!image_name_valid(name))
		return -EINVAL;
	if (asprintf(ret, "%s/%s%s", v->images, name, rest) < 0)
		return -ENOMEM;
	return 0;
}

int versions_manifest_path(struct versions *v, const char *name, uint64_t n,
			   char **ret)
{
	char rest[64];

	snprintf(rest, sizeof(rest), "/versions/%llu.manifest",
		 (unsigned long long)n);
	return versions_image_path(v, name, rest, ret);
}

int versions_current(struct versions *v, const char *name, uint64_t *ret)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	uint64_t n;
	int r;

	r = versions_image_path(v, name, "/current", &path);
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

/* N of "N.manifest" (no leading zero), or 0. */
static uint64_t manifest_number(const char *fname)
{
	static const char suffix[] = ".manifest";
	size_t len = strlen(fname), digits;
	char num[21];
	uint64_t n;

	if (len <= strlen(suffix) ||
	    strcmp(fname + len - strlen(suffix), suffix))
		return 0;
	digits = len - strlen(suffix);
	if (digits >= sizeof(num) || fname[0] == '0')
		return 0;
	memcpy(num, fname, digits);
	num[digits] = '\0';
	return parse_u64(num, &n) < 0 ? 0 : n;
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
	r = versions_image_path(v, name, "/versions", &path);
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

int versions_digest(int fd, uint64_t size, bool zero_version,
		    uint8_t out[VMF_HASH_LEN])
{
	_cleanup_(md_ctx_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t buf[SCAN_CHUNK];
	uint64_t off = 0;
	int r;

	if (!md)
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

int versions_read_header(int fd, uint64_t size, struct manifest_header *ret)
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

	mutex_lock(&v->lock);
	for (unsigned i = 0; i < ETAG_CACHE_SIZE && !found; i++) {
		struct etag_entry *e = &v->etags[i];

		if (e->version == n && strcmp(e->name, name) == 0) {
			memcpy(out, e->sha256, VMF_HASH_LEN);
			found = true;
		}
	}
	mutex_unlock(&v->lock);
	return found;
}

static void etag_insert(struct versions *v, const char *name, uint64_t n,
			const uint8_t sha[VMF_HASH_LEN])
{
	struct etag_entry *e;

	mutex_lock(&v->lock);
	e = &v->etags[v->etag_next];
	v->etag_next = (v->etag_next + 1) % ETAG_CACHE_SIZE;
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->version = n;
	memcpy(e->sha256, sha, VMF_HASH_LEN);
	mutex_unlock(&v->lock);
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
	r = versions_manifest_path(v, name, n, &path);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	info.manifest_size = (uint64_t)st.st_size;
	r = versions_read_header(fd, info.manifest_size, &info.hdr);
	if (r < 0)
		return r;
	if (info.hdr.version != n)
		return -EBADMSG;
	if (want_sha256 && !etag_lookup(v, name, n, info.sha256)) {
		/* Computed outside the lock; two threads may both do it. */
		r = versions_digest(fd, info.manifest_size, false, info.sha256);
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

	r = versions_image_path(v, name, "/policy.json", &path);
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

int versions_lock_existing(struct versions *v, const char *name, int *ret_fd)
{
	uint64_t n;
	int r = versions_current(v, name, &n);

	return r < 0 ? r : versions_lock_image(v, name, ret_fd);
}

int versions_lock_image(struct versions *v, const char *name, int *ret_fd)
{
	_cleanup_free_ char *img = NULL, *dir = NULL, *path = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	r = versions_image_path(v, name, "", &img);
	if (r == 0)
		r = versions_image_path(v, name, "/versions", &dir);
	if (r == 0)
		r = versions_image_path(v, name, "/lock", &path);
	if (r < 0)
		return r;
	r = mkdir_p(dir, 0700);
	if (r < 0)
		return r;
	/* The image may be new: make images/NAME and NAME/versions
	 * durable entries of their parents. */
	r = fsync_parent_dir(dir);
	if (r == 0)
		r = fsync_parent_dir(img);
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

struct store *versions_store(struct versions *v)
{
	return v->store;
}

const char *versions_commits_dir(struct versions *v)
{
	return v->commits;
}
