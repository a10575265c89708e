/* SPDX-License-Identifier: MIT */
/* Boot profiles in images/NAME/profiles/N.json (see profiles.h).
 *
 * Owns the profile files.  The file holds every entry with its rank sum
 * and upload count, so that later uploads merge exactly:
 *   {"format": 1, "version": N, "block_size": B, "uploads": U,
 *    "blocks": [[block, rank_sum, uploads], ...]}   best first
 * Nothing is cached in memory.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "io.h"
#include "log.h"
#include "proto.h"
#include "util.h"

#include "profiles.h"
#include "versions.h"

#define PROFILE_DIR    "/profiles"
#define PROFILE_FORMAT 1
/* A file of VMF_PROFILE_MAX_BLOCKS entries of the largest numbers. */
#define PROFILE_FILE_MAX (VMF_PROFILE_MAX_BLOCKS * 64u)

void profiles_fini(struct profile *p)
{
	free(p->e);
	p->e = NULL;
	p->n = 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int profiles_parse_upload(const void *body, size_t len, uint64_t version,
			  uint64_t nblocks, uint64_t **ret, size_t *ret_n,
			  const char **ret_why)
{
	_cleanup_(json_decrefp) json_t *j = NULL;
	_cleanup_free_ uint64_t *blocks = NULL, *sorted = NULL;
	json_int_t v = 0;
	json_t *list = NULL, *item;
	size_t n, i;

	j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j) ||
	    json_unpack(j, "{s:I, s:o}", "version", &v, "blocks", &list) < 0 ||
	    !json_is_array(list)) {
		*ret_why = "want a JSON object {\"version\": N, \"blocks\": "
			   "[B, ...]}";
		return -EBADMSG;
	}
	if (v < 0 || (uint64_t)v != version) {
		*ret_why = "the body's version is not the URL's";
		return -EBADMSG;
	}
	n = json_array_size(list);
	if (n == 0 || n > VMF_PROFILE_MAX_BLOCKS) {
		*ret_why = "want 1 to 65536 blocks";
		return -EBADMSG;
	}
	blocks = calloc(n, sizeof(*blocks));
	sorted = calloc(n, sizeof(*sorted));
	if (!blocks || !sorted)
		return -ENOMEM;
	json_array_foreach(list, i, item)
	{
		json_int_t b =
		    json_is_integer(item) ? json_integer_value(item) : -1;

		if (b < 0 || (uint64_t)b >= nblocks) {
			*ret_why = "a block index is not an integer below "
				   "the version's number of blocks";
			return -EBADMSG;
		}
		blocks[i] = sorted[i] = (uint64_t)b;
	}
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	for (i = 1; i < n; i++) {
		if (sorted[i] == sorted[i - 1]) {
			*ret_why = "a block is listed twice";
			return -EBADMSG;
		}
	}
	*ret = steal_ptr(&blocks);
	*ret_n = n;
	return 0;
}

static int cmp_block(const void *a, const void *b)
{
	const struct profile_entry *x = a, *y = b;

	return x->block < y->block ? -1 : x->block > y->block;
}

/* Best first: lower mean rank, then more uploads, then lower block. */
static int cmp_rank(const void *a, const void *b)
{
	const struct profile_entry *x = a, *y = b;
	/* Exact: mean x < mean y  <=>  sum x * up y < sum y * up x. */
	unsigned __int128 l = (unsigned __int128)x->rank_sum * y->uploads;
	unsigned __int128 r = (unsigned __int128)y->rank_sum * x->uploads;

	if (l != r)
		return l < r ? -1 : 1;
	if (x->uploads != y->uploads)
		return x->uploads > y->uploads ? -1 : 1;
	return cmp_block(a, b);
}

int profiles_merge(struct profile *p, const uint64_t *blocks, size_t n)
{
	_cleanup_free_ struct profile_entry *up = NULL;
	struct profile_entry *out;
	size_t i = 0, k = 0, m = 0;

	up = calloc(n ? n : 1, sizeof(*up));
	out = calloc(p->n + n ? p->n + n : 1, sizeof(*out));
	if (!up || !out) {
		free(out);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++)
		up[i] = (struct profile_entry){blocks[i], i, 1};
	qsort(up, n, sizeof(*up), cmp_block);
	if (p->n) /* p->e may be NULL */
		qsort(p->e, p->n, sizeof(*p->e), cmp_block);
	/* Both sorted by block: one pass joins them. */
	for (i = 0; i < p->n || k < n;) {
		if (k == n || (i < p->n && p->e[i].block < up[k].block)) {
			out[m++] = p->e[i++];
		} else if (i == p->n || up[k].block < p->e[i].block) {
			out[m++] = up[k++];
		} else {
			out[m] = p->e[i++];
			out[m].rank_sum += up[k++].rank_sum;
			out[m++].uploads++;
		}
	}
	qsort(out, m, sizeof(*out), cmp_rank);
	if (m > VMF_PROFILE_MAX_BLOCKS)
		m = VMF_PROFILE_MAX_BLOCKS;
	free(p->e);
	p->e = out;
	p->n = m;
	p->uploads++;
	return 0;
}

static int profiles_path(struct versions *v, const char *name, uint64_t version,
			 char **ret)
{
	char rest[64];

	snprintf(rest, sizeof(rest), PROFILE_DIR "/%" PRIu64 ".json", version);
	return versions_image_path(v, name, rest, ret);
}

static int parse_entry(json_t *item, struct profile_entry *ret)
{
	json_int_t b, sum, n;

	if (json_unpack(item, "[I, I, I]", &b, &sum, &n) < 0 || b < 0 ||
	    sum < 0 || n < 1)
		return -EBADMSG;
	*ret = (struct profile_entry){(uint64_t)b, (uint64_t)sum, (uint64_t)n};
	return 0;
}

/* Read version's profile file.  -ENOENT if there is none, -EBADMSG if
 * it is corrupt. */
static int profiles_read(struct versions *v, const char *name, uint64_t version,
			 struct profile *ret)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	_cleanup_(json_decrefp) json_t *j = NULL;
	json_int_t format, ver, bs, uploads;
	struct profile p = {0};
	json_t *list, *item;
	size_t len, i;
	int r;

	r = profiles_path(v, name, version, &path);
	if (r < 0)
		return r;
	r = read_file(path, PROFILE_FILE_MAX, &text, &len);
	if (r < 0)
		return r == -EFBIG ? -EBADMSG : r;
	j = json_loadb(text, len, 0, NULL);
	if (json_unpack(j, "{s:I, s:I, s:I, s:I, s:o}", "format", &format,
			"version", &ver, "block_size", &bs, "uploads", &uploads,
			"blocks", &list) < 0 ||
	    format != PROFILE_FORMAT || (uint64_t)ver != version || bs <= 0 ||
	    bs > UINT32_MAX || uploads < 1 || !json_is_array(list) ||
	    json_array_size(list) > VMF_PROFILE_MAX_BLOCKS)
		return -EBADMSG;
	p.version = version;
	p.block_size = (uint32_t)bs;
	p.uploads = (uint64_t)uploads;
	p.e = calloc(json_array_size(list) + 1, sizeof(*p.e));
	if (!p.e)
		return -ENOMEM;
	json_array_foreach(list, i, item)
	{
		if (parse_entry(item, &p.e[p.n]) < 0) {
			profiles_fini(&p);
			return -EBADMSG;
		}
		p.n++;
	}
	*ret = p;
	return 0;
}

static int profiles_write(struct versions *v, const char *name,
			  const struct profile *p)
{
	_cleanup_(json_decrefp) json_t *j = NULL;
	_cleanup_free_ char *path = NULL, *text = NULL;
	json_t *list = json_array();
	int r;

	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < p->n; i++)
		if (json_array_append_new(
			list, json_pack("[I, I, I]", (json_int_t)p->e[i].block,
					(json_int_t)p->e[i].rank_sum,
					(json_int_t)p->e[i].uploads)) < 0) {
			json_decref(list);
			return -ENOMEM;
		}
	j = json_pack("{s:i, s:I, s:I, s:I, s:o}", "format", PROFILE_FORMAT,
		      "version", (json_int_t)p->version, "block_size",
		      (json_int_t)p->block_size, "uploads",
		      (json_int_t)p->uploads, "blocks", list);
	if (!j)
		return -ENOMEM;
	text = json_dumps(j, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	r = profiles_path(v, name, p->version, &path);
	if (r < 0)
		return r;
	return write_file_atomic(path, text, strlen(text), 0644);
}

static void closedirp(DIR **d)
{
	if (*d)
		(void)closedir(*d); /* read-only: nothing to report */
}

/* The version number of a profile file's name ("N.json"), or 0. */
static uint64_t file_version(const char *fname)
{
	char num[24];
	const char *dot = strchr(fname, '.');
	uint64_t n;

	if (!dot || strcmp(dot, ".json") != 0 ||
	    (size_t)(dot - fname) >= sizeof(num) || fname[0] == '0')
		return 0;
	memcpy(num, fname, (size_t)(dot - fname));
	num[dot - fname] = '\0';
	return parse_u64(num, &n) < 0 ? 0 : n;
}

/* Every version with a profile file, in *ret (a new array, any order). */
static int profiles_versions(struct versions *v, const char *name,
			     uint64_t **ret, size_t *ret_n)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_(closedirp) DIR *d = NULL;
	uint64_t *list = NULL, *grown;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int r;

	r = versions_image_path(v, name, PROFILE_DIR, &dir);
	if (r < 0)
		return r;
	d = opendir(dir);
	if (!d && errno != ENOENT)
		return -errno;
	while (d && (de = readdir(d))) {
		uint64_t ver = file_version(de->d_name);

		if (!ver)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(list, cap * sizeof(*list));
			if (!grown) {
				free(list);
				return -ENOMEM;
			}
			list = grown;
		}
		list[n++] = ver;
	}
	*ret = list;
	*ret_n = n;
	return 0;
}

/* Remove the profiles of versions retention dropped (under the lock). */
static void prune(struct versions *v, const char *name)
{
	_cleanup_free_ uint64_t *have = NULL, *live = NULL;
	size_t nhave = 0, nlive = 0;

	if (profiles_versions(v, name, &have, &nhave) < 0 ||
	    versions_numbers(v, name, &live, &nlive) < 0)
		return; /* a later merge tries again */
	for (size_t i = 0; nlive && i < nhave; i++) {
		_cleanup_free_ char *path = NULL;

		if (bsearch(&have[i], live, nlive, sizeof(*live), cmp_u64))
			continue;
		if (profiles_path(v, name, have[i], &path) == 0 &&
		    unlink(path) < 0 && errno != ENOENT)
			log_warn("image %s: removing the profile of dropped "
				 "version %" PRIu64 ": %m",
				 name, have[i]);
	}
}

int profiles_store_merge(struct versions *v, const char *name, uint64_t version,
			 uint32_t block_size, const uint64_t *blocks, size_t n,
			 struct profile *ret)
{
	_cleanup_close_ int lock_fd = -1;
	_cleanup_free_ char *dir = NULL;
	struct profile p = {0};
	int r;

	r = versions_lock_existing(v, name, &lock_fd);
	if (r < 0)
		return r;
	r = profiles_read(v, name, version, &p);
	if (r == -EBADMSG)
		log_warn("image %s: the profile of version %" PRIu64
			 " is corrupt: starting it again",
			 name, version);
	/* A profile recorded with another block size (none can be: a
	 * version's manifest never changes) would mix units: restart. */
	if (r == 0 && p.block_size != block_size) {
		profiles_fini(&p);
		r = -ENOENT;
	}
	if (r < 0 && r != -ENOENT && r != -EBADMSG)
		return r;
	if (r < 0)
		p = (struct profile){.version = version,
				     .block_size = block_size};
	r = profiles_merge(&p, blocks, n);
	if (r == 0)
		r = versions_image_path(v, name, PROFILE_DIR, &dir);
	if (r == 0)
		r = mkdir_p(dir, 0755);
	if (r == 0)
		r = profiles_write(v, name, &p);
	if (r == 0) {
		prune(v, name);
		*ret = (struct profile){.version = version,
					.block_size = block_size,
					.uploads = p.uploads,
					.n = p.n};
	}
	profiles_fini(&p);
	return r;
}

int profiles_load_nearest(struct versions *v, const char *name,
			  uint64_t version, struct profile *ret)
{
	_cleanup_free_ uint64_t *have = NULL;
	size_t n = 0;
	int r;

	r = profiles_versions(v, name, &have, &n);
	if (r < 0)
		return r;
	if (n == 0)
		return -ENOENT;
	qsort(have, n, sizeof(*have), cmp_u64);
	for (size_t i = n; i-- > 0;) {
		if (have[i] > version)
			continue;
		r = profiles_read(v, name, have[i], ret);
		if (r == 0)
			return 0;
		if (r != -ENOENT)
			log_warn("image %s: the profile of version %" PRIu64
				 " is unreadable (%s): skipped",
				 name, have[i], strerror(-r));
	}
	return -ENOENT;
}

json_t *profiles_to_json(const struct profile *p)
{
	json_t *list = json_array();

	if (!list)
		return NULL;
	for (size_t i = 0; i < p->n; i++)
		if (json_array_append_new(
			list, json_integer((json_int_t)p->e[i].block)) < 0) {
			json_decref(list);
			return NULL;
		}
	return json_pack("{s:I, s:I, s:I, s:o}", "version",
			 (json_int_t)p->version, "block_size",
			 (json_int_t)p->block_size, "uploads",
			 (json_int_t)p->uploads, "blocks", list);
}
