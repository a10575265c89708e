/* SPDX-License-Identifier: MIT */
/* Write leases in images/NAME/lease.json.
 *
 * Owns the lease files.  Every change is a read-modify-write under the
 * image lock (versions_lock_image()), replaced with write_file_atomic(),
 * so a reader without the lock sees the old file or the new one, and a
 * crash leaves one of them.  Nothing is cached in memory: a break by
 * another process is seen at the next read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "util.h"

#include "leases.h"
#include "versions.h"

#define LEASE_FILE "/lease.json"

bool lease_holder_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > VMF_LEASE_HOLDER_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

bool lease_where_valid(const char *s)
{
	return strcmp(s, VMF_LEASE_WHERE_LOCAL) == 0 ||
	       strcmp(s, VMF_LEASE_WHERE_REMOTE) == 0;
}

bool lease_id_valid(const char *s)
{
	if (strlen(s) != VMF_LEASE_ID_HEX_LEN)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

void lease_format_time(int64_t t, char *buf, size_t len)
{
	format_utc(t, buf, len);
}

json_t *lease_to_json(const struct lease *l)
{
	json_t *j = json_pack("{s:s, s:s, s:I, s:I}", "holder", l->holder,
			      "where", l->where, "since", (json_int_t)l->since,
			      "expires", (json_int_t)l->expires);

	if (j && l->version > 0 &&
	    json_object_set_new(j, "version",
				json_integer((json_int_t)l->version)) < 0) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static int lease_path(struct versions *v, const char *name, char **ret)
{
	return versions_image_path(v, name, LEASE_FILE, ret);
}

int lease_read(struct versions *v, const char *name, struct lease *ret)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	_cleanup_(json_decrefp) json_t *j = NULL;
	const char *id, *holder, *where;
	json_int_t since, expires, version = 0;
	struct lease l;
	size_t len;
	int r;

	r = lease_path(v, name, &path);
	if (r < 0)
		return r;
	r = read_file(path, VMF_JSON_MAX, &text, &len);
	if (r < 0)
		return r == -EFBIG ? -EBADMSG : r;
	j = json_loadb(text, len, 0, NULL);
	/* "version" is optional: files written before it existed lack it. */
	if (!j ||
	    json_unpack(j, "{s:s, s:s, s:s, s:I, s:I, s?I}", "lease_id", &id,
			"holder", &holder, "where", &where, "since", &since,
			"expires", &expires, "version", &version) < 0 ||
	    version < 0)
		return -EBADMSG;
	if (!lease_id_valid(id) || !lease_holder_valid(holder) ||
	    !lease_where_valid(where))
		return -EBADMSG;
	snprintf(l.id, sizeof(l.id), "%s", id);
	snprintf(l.holder, sizeof(l.holder), "%s", holder);
	snprintf(l.where, sizeof(l.where), "%s", where);
	l.since = since;
	l.expires = expires;
	l.version = (uint64_t)version;
	*ret = l;
	return 0;
}

static int lease_write(struct versions *v, const char *name,
		       const struct lease *l)
{
	_cleanup_(json_decrefp) json_t *j = lease_to_json(l);
	_cleanup_free_ char *path = NULL, *text = NULL;
	int r;

	if (!j || json_object_set_new(j, "lease_id", json_string(l->id)) < 0)
		return -ENOMEM;
	r = lease_path(v, name, &path);
	if (r < 0)
		return r;
	text = json_dumps(j, JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	return write_file_atomic(path, text, strlen(text), 0600);
}

static int lease_remove(struct versions *v, const char *name)
{
	_cleanup_free_ char *path = NULL;
	int r;

	r = lease_path(v, name, &path);
	if (r < 0)
		return r;
	if (unlink(path) < 0)
		return -errno;
	return fsync_parent_dir(path);
}

/* The recorded lease, treating a corrupt file as none (logged): an
 * administrator can always take the image back with a new grant. */
static int read_or_none(struct versions *v, const char *name, struct lease *ret,
			bool *ret_found)
{
	int r = lease_read(v, name, ret);

	*ret_found = r == 0;
	if (r == -EBADMSG) {
		log_warn("image %s: lease.json is corrupt; ignoring it", name);
		return 0;
	}
	return r == -ENOENT ? 0 : r;
}

static int new_id(char out[VMF_LEASE_ID_HEX_LEN + 1])
{
	uint8_t raw[VMF_LEASE_ID_HEX_LEN / 2];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	hash_to_hex(raw, sizeof(raw), out);
	return 0;
}

/* Take the image lock (*ret_lock_fd) and read the lease under it.
 * -ENOENT if there is no such image. */
static int lock_and_read(struct versions *v, const char *name, int *ret_lock_fd,
			 struct lease *ret, bool *ret_found)
{
	int r = versions_lock_existing(v, name, ret_lock_fd);

	if (r < 0)
		return r;
	return read_or_none(v, name, ret, ret_found);
}

int lease_acquire(struct versions *v, const char *name,
		  const struct lease_request *rq, struct lease *ret,
		  bool *ret_renewed)
{
	_cleanup_close_ int lock_fd = -1;
	struct lease cur, l;
	int64_t now;
	bool found, renew;
	int r;

	r = lock_and_read(v, name, &lock_fd, &cur, &found);
	if (r < 0)
		return r;
	now = now_wall();
	found = found && lease_live(&cur, now);
	renew = found && rq->id && strcmp(rq->id, cur.id) == 0;
	if (found && !renew) {
		*ret = cur;
		return -EBUSY;
	}
	if (renew) {
		l = cur;
	} else {
		r = new_id(l.id);
		if (r < 0)
			return r;
		l.since = now;
		l.version = 0;
	}
	if (rq->version > 0)
		l.version = rq->version;
	snprintf(l.holder, sizeof(l.holder), "%s", rq->holder);
	snprintf(l.where, sizeof(l.where), "%s", rq->where);
	l.expires = now + rq->seconds;
	r = lease_write(v, name, &l);
	if (r < 0)
		return r;
	*ret = l;
	*ret_renewed = renew;
	return 0;
}

int lease_release(struct versions *v, const char *name, const char *id,
		  struct lease *ret, bool *ret_released)
{
	_cleanup_close_ int lock_fd = -1;
	struct lease cur;
	bool found, live;
	int r;

	r = lock_and_read(v, name, &lock_fd, &cur, &found);
	if (r < 0)
		return r;
	live = found && lease_live(&cur, now_wall());
	if (live && strcmp(cur.id, id) != 0) {
		*ret = cur;
		return -EBUSY;
	}
	/* The caller's live lease, or an expired one (it binds nobody). */
	if (found) {
		r = lease_remove(v, name);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	*ret_released = live;
	return 0;
}

int lease_break(struct versions *v, const char *name, struct lease *ret)
{
	_cleanup_close_ int lock_fd = -1;
	struct lease cur;
	bool found;
	int r;

	memset(&cur, 0, sizeof(cur)); /* a corrupt file is removed too */
	r = lock_and_read(v, name, &lock_fd, &cur, &found);
	if (r < 0)
		return r;
	r = lease_remove(v, name);
	if (r < 0)
		return r; /* -ENOENT: there was none */
	*ret = cur;
	return 0;
}

int lease_check_commit(struct versions *v, const char *name, const char *id,
		       int64_t now, struct lease *ret_held, bool *ret_live)
{
	struct lease cur;
	bool found, live;
	int r;

	r = read_or_none(v, name, &cur, &found);
	if (r < 0)
		return r;
	live = found && lease_live(&cur, now);
	*ret_live = live;
	if (live)
		*ret_held = cur;
	if (!id)
		return live ? -EBUSY : 0;
	return live && strcmp(cur.id, id) == 0 ? 0 : -EBUSY;
}
