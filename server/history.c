/* SPDX-License-Identifier: MIT */
/* Version history records, images/NAME/versions/N.json.
 *
 * Owns those files.  A record is written with write_file_atomic() under
 * the image lock before `current` names its version, so a committed
 * version has its record (unless it predates this module); a record
 * above current is a crashed commit's leftover, replaced by the next
 * commit and never listed.  Stateless; any thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "util.h"

#include "history.h"
#include "versions.h"

#define DIFF_CHUNK 512 /* entries compared per read, on the stack */

static int record_path(struct versions *v, const char *name, uint64_t n,
		       char **ret)
{
	char rest[64];

	snprintf(rest, sizeof(rest), "/versions/%llu.json",
		 (unsigned long long)n);
	return versions_image_path(v, name, rest, ret);
}

/* Compare the new manifest (fd, h) with the previous one (pfd, ph, or
 * pfd < 0 for none) entry by entry. */
static int diff(int fd, const struct manifest_header *h, int pfd,
		const struct manifest_header *ph, uint64_t *ret_changed,
		uint64_t *ret_bytes)
{
	uint8_t a[DIFF_CHUNK * VMF_HASH_LEN], b[DIFF_CHUNK * VMF_HASH_LEN];
	bool comparable = pfd >= 0 && ph->block_size == h->block_size;
	uint64_t changed = 0, bytes = 0;
	int r;

	for (uint64_t i = 0; i < h->nblocks; i += DIFF_CHUNK) {
		uint64_t n =
		    h->nblocks - i < DIFF_CHUNK ? h->nblocks - i : DIFF_CHUNK;
		uint64_t old = 0; /* entries of the old manifest in range */

		r = full_pread(fd, a, n * VMF_HASH_LEN,
			       (off_t)manifest_entry_offset(i));
		if (r < 0)
			return r;
		if (comparable && i < ph->nblocks)
			old = ph->nblocks - i < n ? ph->nblocks - i : n;
		if (old > 0) {
			r = full_pread(pfd, b, old * VMF_HASH_LEN,
				       (off_t)manifest_entry_offset(i));
			if (r < 0)
				return r;
		}
		for (uint64_t k = 0; k < n; k++) {
			const uint8_t *e = a + k * VMF_HASH_LEN;

			if (k < old &&
			    memcmp(e, b + k * VMF_HASH_LEN, VMF_HASH_LEN) == 0)
				continue;
			if (k >= old && hash_is_zero(e))
				continue; /* a new zero block adds nothing */
			changed++;
			if (!hash_is_zero(e))
				bytes += manifest_block_len(h, i + k);
		}
	}
	*ret_changed = changed;
	*ret_bytes = bytes;
	return 0;
}

int history_record(struct versions *v, const char *name, uint64_t n, int fd,
		   const struct manifest_header *h, const char *author)
{
	_cleanup_(json_decrefp) json_t *rec = NULL;
	_cleanup_free_ char *path = NULL, *text = NULL;
	_cleanup_close_ int pfd = -1;
	struct version_info prev = {0};
	uint64_t changed, bytes;
	int r;

	if (n > 1) {
		pfd = versions_open_manifest(v, name, n - 1, false, &prev);
		if (pfd < 0)
			return pfd;
	}
	r = diff(fd, h, pfd, &prev.hdr, &changed, &bytes);
	if (r < 0)
		return r;
	rec = json_pack("{s:I, s:s, s:I, s:I}", "time", (json_int_t)now_wall(),
			"author", author ? author : "unknown", "blocks_changed",
			(json_int_t)changed, "bytes_added", (json_int_t)bytes);
	if (!rec)
		return -ENOMEM;
	text = json_dumps(rec, JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	r = record_path(v, name, n, &path);
	if (r < 0)
		return r;
	return write_file_atomic(path, text, strlen(text), 0600);
}

/* One entry of the list: the record if there is one, else the mtime. */
static json_t *entry(struct versions *v, const char *name, uint64_t n)
{
	_cleanup_free_ char *path = NULL, *mpath = NULL, *text = NULL;
	json_t *rec, *out;
	json_int_t t, changed, bytes;
	const char *author;
	struct stat st;
	size_t len;

	out = json_pack("{s:I}", "version", (json_int_t)n);
	if (!out)
		return NULL;
	if (record_path(v, name, n, &path) == 0 &&
	    read_file(path, VMF_JSON_MAX, &text, &len) == 0) {
		rec = json_loadb(text, len, 0, NULL);
		if (rec && json_unpack(rec, "{s:I, s:s, s:I, s:I}", "time", &t,
				       "author", &author, "blocks_changed",
				       &changed, "bytes_added", &bytes) == 0) {
			json_object_update(out, rec);
			json_decref(rec);
			return out;
		}
		json_decref(rec);
		log_warn("%s is corrupt; ignoring it", path);
	}
	if (versions_manifest_path(v, name, n, &mpath) == 0 &&
	    stat(mpath, &st) == 0)
		json_object_set_new(out, "time",
				    json_integer((json_int_t)st.st_mtime));
	return out;
}

int history_list(struct versions *v, const char *name, json_t **ret)
{
	_cleanup_free_ uint64_t *nums = NULL;
	json_t *list, *e;
	size_t n = 0;
	int r;

	r = versions_numbers(v, name, &nums, &n);
	if (r < 0)
		return r;
	list = json_array();
	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		e = entry(v, name, nums[i]);
		if (!e || json_array_append_new(list, e) < 0) {
			json_decref(list);
			return -ENOMEM;
		}
	}
	*ret = list;
	return 0;
}
