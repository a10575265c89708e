/* SPDX-License-Identifier: MIT */
/* Pins in images/NAME/pins.json (see pins.h).
 *
 * Owns the pin files.  Changes are read-modify-write under the image
 * lock, replaced with write_file_atomic(); readers without the lock see
 * the old file or the new one.  Nothing is cached in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "util.h"

#include "leases.h"
#include "pins.h"
#include "versions.h"

#define PINS_FILE "/pins.json"
/* A file of PINS_MAX entries is well under this. */
#define PINS_FILE_MAX (PINS_MAX * 512)

struct pin_set {
	struct pin *p;
	size_t n;
};

static void pin_set_fini(struct pin_set *s)
{
	free(s->p);
	s->p = NULL;
	s->n = 0;
}

static int pins_path(struct versions *v, const char *name, char **ret)
{
	return versions_image_path(v, name, PINS_FILE, ret);
}

static int parse_pin(const char *id, json_t *j, struct pin *ret)
{
	const char *holder;
	json_int_t version, since, expires;

	if (json_unpack(j, "{s:s, s:I, s:I, s:I}", "holder", &holder, "version",
			&version, "since", &since, "expires", &expires) < 0 ||
	    version < 1 || !lease_id_valid(id) || !lease_holder_valid(holder))
		return -EBADMSG;
	snprintf(ret->id, sizeof(ret->id), "%s", id);
	snprintf(ret->holder, sizeof(ret->holder), "%s", holder);
	ret->version = (uint64_t)version;
	ret->since = since;
	ret->expires = expires;
	return 0;
}

/* Every pin recorded for name (live or not); none if there is no file. */
static int pins_read(struct versions *v, const char *name, struct pin_set *ret)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	_cleanup_(json_decrefp) json_t *j = NULL;
	struct pin_set s = {0};
	const char *id;
	json_t *val;
	size_t len;
	int r;

	r = pins_path(v, name, &path);
	if (r < 0)
		return r;
	r = read_file(path, PINS_FILE_MAX, &text, &len);
	if (r == -ENOENT) {
		*ret = s;
		return 0;
	}
	if (r < 0)
		return r == -EFBIG ? -EBADMSG : r;
	j = json_loadb(text, len, 0, NULL);
	if (!json_is_object(j))
		return -EBADMSG;
	s.p = calloc(json_object_size(j) + 1, sizeof(*s.p));
	if (!s.p)
		return -ENOMEM;
	json_object_foreach(j, id, val)
	{
		r = parse_pin(id, val, &s.p[s.n]);
		if (r < 0) {
			pin_set_fini(&s);
			return r;
		}
		s.n++;
	}
	*ret = s;
	return 0;
}

/* Write the pins of s live at now (none: the file is removed). */
static int pins_write(struct versions *v, const char *name,
		      const struct pin_set *s, int64_t now)
{
	_cleanup_(json_decrefp) json_t *j = json_object();
	_cleanup_free_ char *path = NULL, *text = NULL;
	int r;

	if (!j)
		return -ENOMEM;
	r = pins_path(v, name, &path);
	if (r < 0)
		return r;
	for (size_t i = 0; i < s->n; i++) {
		const struct pin *p = &s->p[i];

		if (p->expires <= now)
			continue;
		if (json_object_set_new(
			j, p->id,
			json_pack("{s:s, s:I, s:I, s:I}", "holder", p->holder,
				  "version", (json_int_t)p->version, "since",
				  (json_int_t)p->since, "expires",
				  (json_int_t)p->expires)) < 0)
			return -ENOMEM;
	}
	if (json_object_size(j) == 0) {
		if (unlink(path) < 0)
			return errno == ENOENT ? 0 : -errno;
		return fsync_parent_dir(path);
	}
	text = json_dumps(j, JSON_SORT_KEYS);
	if (!text)
		return -ENOMEM;
	return write_file_atomic(path, text, strlen(text), 0600);
}

/* Take the image lock and read the pins under it; a corrupt file is
 * logged and counts as empty (it is replaced at the write). */
static int lock_and_read(struct versions *v, const char *name, int *ret_lock_fd,
			 struct pin_set *ret)
{
	int r = versions_lock_existing(v, name, ret_lock_fd);

	if (r < 0)
		return r;
	r = pins_read(v, name, ret);
	if (r == -EBADMSG) {
		log_warn("image %s: pins.json is corrupt; replacing it", name);
		*ret = (struct pin_set){0};
		return 0;
	}
	return r;
}

static bool version_committed(struct versions *v, const char *name, uint64_t n)
{
	struct version_info info;
	int fd = versions_open_manifest(v, name, n, false, &info);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int pin_acquire(struct versions *v, const char *name,
		const struct pin_request *rq, struct pin *ret,
		bool *ret_renewed)
{
	_cleanup_close_ int lock_fd = -1;
	struct pin_set s;
	struct pin *p = NULL, *grown;
	uint8_t raw[VMF_LEASE_ID_HEX_LEN / 2];
	int64_t now;
	size_t live = 0;
	int r;

	r = lock_and_read(v, name, &lock_fd, &s);
	if (r < 0)
		return r;
	/* Under the lock: retention cannot drop it before the pin lands. */
	if (!version_committed(v, name, rq->version)) {
		pin_set_fini(&s);
		return -ESRCH;
	}
	now = now_wall();
	for (size_t i = 0; i < s.n; i++) {
		if (s.p[i].expires <= now)
			continue;
		live++;
		if (rq->id && strcmp(s.p[i].id, rq->id) == 0 &&
		    s.p[i].version == rq->version)
			p = &s.p[i];
	}
	*ret_renewed = p != NULL;
	if (!p) {
		if (live >= PINS_MAX) {
			pin_set_fini(&s);
			return -ENOSPC;
		}
		grown = realloc(s.p, (s.n + 1) * sizeof(*s.p));
		if (!grown) {
			pin_set_fini(&s);
			return -ENOMEM;
		}
		s.p = grown;
		p = &s.p[s.n++];
		if (RAND_bytes(raw, sizeof(raw)) != 1) {
			pin_set_fini(&s);
			return -EIO;
		}
		hash_to_hex(raw, sizeof(raw), p->id);
		p->version = rq->version;
		p->since = now;
	}
	snprintf(p->holder, sizeof(p->holder), "%s", rq->holder);
	p->expires = now + rq->seconds;
	*ret = *p;
	r = pins_write(v, name, &s, now);
	pin_set_fini(&s);
	return r;
}

int pin_release(struct versions *v, const char *name, const char *id,
		bool *ret_released)
{
	_cleanup_close_ int lock_fd = -1;
	struct pin_set s;
	int64_t now;
	bool found = false;
	int r;

	r = lock_and_read(v, name, &lock_fd, &s);
	if (r < 0)
		return r;
	now = now_wall();
	for (size_t i = 0; i < s.n; i++)
		if (strcmp(s.p[i].id, id) == 0) {
			found = s.p[i].expires > now;
			s.p[i].expires = 0; /* pruned by the write */
		}
	r = pins_write(v, name, &s, now);
	pin_set_fini(&s);
	*ret_released = found;
	return r;
}

int pin_list(struct versions *v, const char *name, int64_t now,
	     struct pin **ret, size_t *ret_n)
{
	struct pin_set s;
	size_t n = 0;
	int r;

	r = pins_read(v, name, &s);
	if (r < 0)
		return r;
	for (size_t i = 0; i < s.n; i++)
		if (s.p[i].expires > now)
			s.p[n++] = s.p[i];
	if (n == 0)
		pin_set_fini(&s);
	*ret = s.p;
	*ret_n = n;
	return 0;
}

int pin_versions(struct versions *v, const char *name, int64_t now,
		 uint64_t **ret, size_t *ret_n)
{
	_cleanup_free_ struct pin *p = NULL;
	uint64_t *out;
	size_t n;
	int r;

	r = pin_list(v, name, now, &p, &n);
	if (r < 0)
		return r;
	out = n ? calloc(n, sizeof(*out)) : NULL;
	if (n && !out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		out[i] = p[i].version;
	*ret = out;
	*ret_n = n;
	return 0;
}
