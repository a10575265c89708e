/* SPDX-License-Identifier: MIT */
/* Request bodies as they arrive: limits and format checks, no I/O.
 *
 * A commit's manifest is streamed to a file by http_write.c and never
 * held in memory; what must be known early is its length, which the
 * first MANIFEST_HEADER_SIZE bytes give.  We keep a copy of those bytes
 * here, so that an upload longer than its header says is refused
 * before it is written.  Stateless apart from struct upload_parse; any
 * thread, one upload at a time.
 */
#include <errno.h>
#include <string.h>

#include "manifest.h"
#include "util.h"

#include "upload_parse.h"

void upload_parse_init(struct upload_parse *u, enum route_id route,
		       uint64_t max)
{
	memset(u, 0, sizeof(*u));
	u->route = route;
	u->max = max;
}

int upload_parse_length(const struct upload_parse *u, const char *value)
{
	uint64_t len;

	if (!value)
		return 0; /* chunked: upload_parse_add() counts */
	if (parse_u64(value, &len) < 0)
		return -EINVAL;
	if (len > u->max)
		return -EFBIG;
	if (u->route == ROUTE_MISSING && len % VMF_HASH_LEN)
		return -EBADMSG;
	return 0;
}

/* ROUTE_COMMIT: keep the header's bytes; parse it once complete. */
static int add_manifest(struct upload_parse *u, const uint8_t *buf, size_t len)
{
	struct manifest_header h;

	if (u->expect && len > u->expect - u->len)
		return -EMSGSIZE;
	if (u->len < MANIFEST_HEADER_SIZE) {
		size_t n = MANIFEST_HEADER_SIZE - (size_t)u->len;

		memcpy(u->head + u->len, buf, len < n ? len : n);
	}
	if (u->expect || u->len + len < MANIFEST_HEADER_SIZE)
		return 0;
	if (manifest_header_parse(u->head, sizeof(u->head), &h) < 0)
		return -EBADMSG;
	u->expect = manifest_encoded_size(&h);
	/* The chunk that completed the header may be too long already. */
	if (len > u->expect - u->len)
		return -EMSGSIZE;
	return 0;
}

int upload_parse_add(struct upload_parse *u, const uint8_t *buf, size_t len)
{
	int r = 0;

	if (u->error)
		return u->error;
	if (u->route == ROUTE_COMMIT)
		r = add_manifest(u, buf, len);
	if (r == 0 && len > u->max - u->len)
		r = -EFBIG;
	if (r < 0) {
		u->error = r;
		return r;
	}
	u->len += len;
	return 0;
}

int upload_parse_finish(const struct upload_parse *u)
{
	if (u->error)
		return u->error;
	if (u->route == ROUTE_MISSING && u->len % VMF_HASH_LEN)
		return -EBADMSG;
	if (u->route == ROUTE_COMMIT && (!u->expect || u->len != u->expect))
		return -EBADMSG;
	return 0;
}
