/* SPDX-License-Identifier: MIT */
/* libFuzzer target for server/upload_parse.c: the body of a write request
 * (POST /v1/blocks/missing, a commit's manifest, a block or a lease's
 * JSON) arriving in chunks of any size, and its Content-Length.
 *
 * Input: byte 0 picks the route, bytes 1-2 a small size limit (the
 * commit keeps its real one), then a Content-Length value up to '\n'
 * (none if the line is just "-"), then chunks: a length byte k, then k
 * body bytes (fewer at the end).  Every answer is compared with a model
 * written from upload_parse.h and docs/protocol.md, over the whole body at
 * once; a commit that completes must parse with manifest_parse().
 * Invariant violations abort. */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

#include "upload_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* As in http_write.c: the largest manifest a valid header describes. */
#define COMMIT_MAX              \
	(MANIFEST_HEADER_SIZE + \
	 VMF_IMAGE_SIZE_MAX / VMF_BLOCK_SIZE_MIN * (uint64_t)VMF_HASH_LEN)

static const enum route_id routes[] = {ROUTE_MISSING, ROUTE_COMMIT, ROUTE_BLOCK,
				       ROUTE_LEASE};

/* Content-Length: plain decimal digits that fit a uint64_t. */
static int model_length(enum route_id route, uint64_t max, const char *v)
{
	const char *umax = "18446744073709551615";
	uint64_t n = 0;
	size_t len;

	if (!v)
		return 0;
	len = strlen(v);
	if (len == 0 || strspn(v, "0123456789") != len)
		return -EINVAL;
	while (len > 1 && *v == '0') {
		v++;
		len--;
	}
	if (len > strlen(umax) || (len == strlen(umax) && strcmp(v, umax) > 0))
		return -EINVAL;
	for (; *v; v++)
		n = n * 10 + (uint64_t)(*v - '0');
	if (n > max)
		return -EFBIG;
	if (route == ROUTE_MISSING && n % VMF_HASH_LEN)
		return -EBADMSG;
	return 0;
}

/* What upload_parse_add() must answer for body[a, a + l), given no error
 * before: the header (if a commit's first 64 bytes are in by a + l)
 * and the limits. */
static int model_chunk(enum route_id route, uint64_t max, const uint8_t *body,
		       uint64_t a, uint64_t l)
{
	struct manifest_header h;

	if (route == ROUTE_COMMIT && a + l >= MANIFEST_HEADER_SIZE) {
		if (manifest_header_parse(body, MANIFEST_HEADER_SIZE, &h) < 0)
			return -EBADMSG;
		if (a + l > manifest_encoded_size(&h))
			return -EMSGSIZE;
	}
	if (a + l > max)
		return -EFBIG;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size, *p, *nl;
	enum route_id route;
	struct upload_parse u;
	uint64_t max, total = 0, accepted = 0;
	uint8_t *body;
	char *cl = NULL;
	int r, w, first = 0;

	if (size < 3)
		return 0;
	route = routes[data[0] % 4];
	max = route == ROUTE_COMMIT ? COMMIT_MAX
				    : (uint64_t)data[1] << 8 | data[2];
	p = data + 3;

	/* Content-Length, checked before the body. */
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl) {
		if (!(nl - p == 1 && *p == '-')) {
			cl = strndup((const char *)p, (size_t)(nl - p));
			assert(cl);
		}
		p = nl + 1;
	}
	upload_parse_init(&u, route, max);
	r = upload_parse_length(&u, cl);
	w = model_length(route, max, cl);
	assert(r == w);
	free(cl);

	/* The body, in chunks; first collected whole for the model. */
	body = malloc(size);
	assert(body);
	for (const uint8_t *q = p; q < end;) {
		size_t k = *q++;

		if (k > (size_t)(end - q))
			k = (size_t)(end - q);
		memcpy(body + total, q, k);
		total += k;
		q += k;
	}
	for (uint64_t a = 0; p < end;) {
		size_t k = *p++;

		if (k > (size_t)(end - p))
			k = (size_t)(end - p);
		r = upload_parse_add(&u, p, k);
		w = first ? first : model_chunk(route, max, body, a, k);
		assert(r == w);
		if (r == 0)
			accepted += k;
		else
			first = r;
		assert(u.error == first);
		assert(u.len == accepted && u.len <= u.max);
		/* The header is in once expect is known (a chunk refused
		 * after completing it is not counted in u.len). */
		assert(u.len <= (u.expect ? u.expect : u.max));
		if (u.expect && !first)
			assert(u.len >= MANIFEST_HEADER_SIZE);
		a += k;
		p += k;
	}

	r = upload_parse_finish(&u);
	if (first) {
		assert(r == first);
	} else if (route == ROUTE_MISSING) {
		assert(r == (total % VMF_HASH_LEN ? -EBADMSG : 0));
	} else if (route == ROUTE_COMMIT) {
		struct manifest m;
		int pr = manifest_parse(body, total, &m);

		/* Complete by its header exactly when the manifest parses
		 * (its hashes are free-form). */
		assert(pr == 0 || pr == -EBADMSG);
		assert((r == 0) == (pr == 0));
		assert(r == 0 || r == -EBADMSG);
		if (pr == 0) {
			assert(manifest_encoded_size(&m.hdr) == u.expect);
			manifest_fini(&m);
		}
	} else {
		assert(r == 0);
	}
	free(body);
	return 0;
}
