/* SPDX-License-Identifier: MIT */
/* Retention of image versions (see retention.h).
 *
 * Stateless.  Reads policy.json, lease.json and versions/, and unlinks
 * versions/N.manifest and N.json of dropped versions; the callers hold
 * the image lock, so no commit or lease change interleaves.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "io.h"
#include "log.h"
#include "util.h"

#include "cli.h"
#include "leases.h"
#include "pins.h"
#include "retention.h"
#include "versions.h"

void retention_plan_fini(struct retention_plan *p)
{
	free(p->keep);
	free(p->drop);
	p->keep = p->drop = NULL;
	p->nkeep = p->ndrop = 0;
}

/* policy.json's keep_versions, or dflt: -EBADMSG if it is not an
 * integer from 1 to RETENTION_KEEP_MAX. */
static int keep_count(struct versions *v, const char *name, uint64_t dflt,
		      uint64_t *ret)
{
	_cleanup_(json_decrefp) json_t *policy = NULL;
	json_t *j;
	json_int_t n;
	int r;

	r = versions_policy(v, name, &policy);
	if (r < 0)
		return r;
	j = json_object_get(policy, "keep_versions");
	if (!j) {
		*ret = dflt;
		return 0;
	}
	if (!json_is_integer(j))
		return -EBADMSG;
	n = json_integer_value(j);
	if (n < 1 || n > RETENTION_KEEP_MAX)
		return -EBADMSG;
	*ret = (uint64_t)n;
	return 0;
}

/* The base version of a live lease, or 0. */
static uint64_t leased_version(struct versions *v, const char *name)
{
	struct lease l;
	int r = lease_read(v, name, &l);

	if (r == -EBADMSG)
		log_warn("image %s: lease.json is corrupt; ignoring it", name);
	if (r < 0 || !lease_live(&l, now_wall()))
		return 0;
	return l.version;
}

static bool pinned(const uint64_t *pins, size_t npins, uint64_t n)
{
	for (size_t i = 0; i < npins; i++)
		if (pins[i] == n)
			return true;
	return false;
}

int retention_plan(struct versions *v, const char *name, uint64_t keep_default,
		   struct retention_plan *ret)
{
	_cleanup_free_ uint64_t *nums = NULL, *pins = NULL;
	size_t npins = 0;
	struct retention_plan p = {0};
	uint64_t keep_n = 0,
		 leased; /* keep_n: gcc -O1 cannot see keep_count sets it */
	size_t n = 0;
	int r;

	if (keep_default == 0)
		keep_default = 1;
	r = keep_count(v, name, keep_default, &keep_n);
	if (r < 0)
		return r;
	r = versions_numbers(v, name, &nums, &n);
	if (r < 0)
		return r;
	r = versions_current(v, name, &p.current);
	if (r < 0)
		return r;
	leased = leased_version(v, name);
	/* A corrupt pins.json drops nothing until a pin change replaces it:
	 * a reader's version is worth more than the disk. */
	r = pin_versions(v, name, now_wall(), &pins, &npins);
	if (r == -EBADMSG)
		log_warn(
		    "image %s: pins.json is corrupt; keeping every version",
		    name);
	if (r < 0)
		return r;
	p.keep = calloc(n ? n : 1, sizeof(*p.keep));
	p.drop = calloc(n ? n : 1, sizeof(*p.drop));
	if (!p.keep || !p.drop) {
		retention_plan_fini(&p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		/* The last keep_n numbers present, the current one (always
		 * among them: it is the largest), the leased and the pinned
		 * ones. */
		bool keep = n - i <= keep_n || nums[i] == p.current ||
			    nums[i] == leased || pinned(pins, npins, nums[i]);

		if (keep)
			p.keep[p.nkeep++] = nums[i];
		else
			p.drop[p.ndrop++] = nums[i];
	}
	*ret = p;
	return 0;
}

static int unlink_version_file(struct versions *v, const char *name, uint64_t n,
			       const char *suffix)
{
	_cleanup_free_ char *path = NULL;
	char rest[64];
	int r;

	snprintf(rest, sizeof(rest), "/versions/%llu.%s", (unsigned long long)n,
		 suffix);
	r = versions_image_path(v, name, rest, &path);
	if (r < 0)
		return r;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int retention_drop(struct versions *v, const char *name,
		   const struct retention_plan *p)
{
	_cleanup_free_ char *dir = NULL;
	int r, first = 0;

	for (size_t i = 0; i < p->ndrop; i++) {
		assert(p->drop[i] != p->current);
		/* The manifest first: without it the version is gone. */
		r = unlink_version_file(v, name, p->drop[i], "manifest");
		if (r == 0)
			r = unlink_version_file(v, name, p->drop[i], "json");
		if (r < 0 && first == 0)
			first = r;
		if (r == 0)
			log_debug(LOG_CAT_STORE,
				  "image %s: dropped version %llu", name,
				  (unsigned long long)p->drop[i]);
	}
	if (p->ndrop == 0)
		return first;
	r = versions_image_path(v, name, "/versions/.", &dir);
	if (r == 0)
		r = fsync_parent_dir(dir);
	return first < 0 ? first : r;
}

int retention_apply(struct versions *v, const char *name, uint64_t keep_default,
		    size_t *ret_dropped)
{
	struct retention_plan p;
	int r;

	r = retention_plan(v, name, keep_default, &p);
	if (r < 0)
		return r;
	r = retention_drop(v, name, &p);
	if (ret_dropped)
		*ret_dropped = p.ndrop;
	retention_plan_fini(&p);
	return r;
}

int retention_parse_keep(const char *cmd, const char *arg, uint64_t *ret)
{
	uint64_t n;

	if (parse_u64(arg, &n) < 0 || n == 0 || n > RETENTION_KEEP_MAX)
		return cli_usage_error(cmd, "--keep-versions: want 1 to %d",
				       RETENTION_KEEP_MAX);
	*ret = n;
	return 0;
}
