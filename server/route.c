/* SPDX-License-Identifier: MIT */
/* Request routing: the path's segments to a route, the method check and
 * the route's parameters (image name, version number, block hash).
 *
 * Works on the URL as sent, one segment at a time, so that an escaped
 * '/' ("a%2Fb") stays inside one (invalid) name instead of making two
 * segments.  Owns nothing; no allocation.  Stateless; any thread.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "hash.h"
#include "util.h"

#include "route.h"

/* No route has more segments than /v1/images/NAME/versions/N/data. */
#define ROUTE_MAX_SEGMENTS 6

/* One segment of the path: not NUL-terminated. */
struct seg {
	const char *p;
	size_t len;
};

static bool seg_is(struct seg s, const char *word)
{
	return s.len == strlen(word) && memcmp(s.p, word, s.len) == 0;
}

/* Split the path into segments.  Returns the count, or -1 if it does
 * not start with '/' or has too many segments to be any route. */
static int split_path(const char *url, struct seg seg[ROUTE_MAX_SEGMENTS])
{
	const char *p;
	int n = 0;

	if (url[0] != '/')
		return -1;
	p = url + 1;
	for (;;) {
		const char *slash = strchr(p, '/');

		if (n == ROUTE_MAX_SEGMENTS)
			return -1;
		seg[n].p = p;
		seg[n].len = slash ? (size_t)(slash - p) : strlen(p);
		n++;
		if (!slash)
			return n;
		p = slash + 1;
	}
}

/* Decode the %XX escapes of s into out (size bytes, NUL-terminated).
 * Returns the decoded length, or -EINVAL on a bad escape, an escaped
 * NUL (which would cut the string short) or if it does not fit. */
static int percent_decode(struct seg s, char *out, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < s.len; i++) {
		char hex[3] = {0};
		uint8_t v;

		if (n + 1 >= size)
			return -EINVAL;
		if (s.p[i] != '%') {
			out[n++] = s.p[i];
			continue;
		}
		if (s.len - i < 3)
			return -EINVAL;
		hex[0] = s.p[i + 1];
		hex[1] = s.p[i + 2];
		if (hash_from_hex(hex, &v, 1) < 0 || v == 0)
			return -EINVAL;
		out[n++] = (char)v;
		i += 2;
	}
	out[n] = '\0';
	return (int)n;
}

/* Which route is this path?  -ENOENT if none.  *ret_name and *ret_num
 * point at the segments holding NAME (or HEX) and N, or are NULL. */
static int match_route(const struct seg seg[], int n, enum route_id *ret,
		       const struct seg **ret_name, const struct seg **ret_num)
{
	*ret_name = *ret_num = NULL;
	if (n < 2 || !seg_is(seg[0], &VMF_API_PREFIX[1])) /* "v1" */
		return -ENOENT;
	if (n == 2 && seg_is(seg[1], "stats"))
		*ret = ROUTE_STATS;
	else if (n == 3 && seg_is(seg[1], "blocks"))
		*ret = seg_is(seg[2], VMF_SEG_MISSING) ? ROUTE_MISSING
						       : ROUTE_BLOCK;
	else if (!seg_is(seg[1], "images"))
		return -ENOENT;
	else if (n == 2)
		*ret = ROUTE_IMAGES;
	else if (n == 3)
		*ret = ROUTE_IMAGE;
	else if (n == 4 && seg_is(seg[3], VMF_SEG_VERSIONS))
		*ret = ROUTE_COMMIT; /* or ROUTE_HISTORY: by method */
	else if (n == 4 && seg_is(seg[3], VMF_SEG_LEASE))
		*ret = ROUTE_LEASE;
	else if (n == 4 && seg_is(seg[3], VMF_SEG_PINS))
		*ret = ROUTE_PINS;
	else if (n == 4 && seg_is(seg[3], VMF_SEG_VM))
		*ret = ROUTE_VM;
	else if (n == 4 && seg_is(seg[3], VMF_SEG_CONSOLE))
		*ret = ROUTE_CONSOLE;
	else if (n == 4 && seg_is(seg[3], VMF_SEG_VNC))
		*ret = ROUTE_VNC;
	else if (n == 5 && seg_is(seg[3], VMF_SEG_VNC) &&
		 seg_is(seg[4], VMF_SEG_TICKET))
		*ret = ROUTE_VNC_TICKET;
	else if (n == 4 && seg_is(seg[3], VMF_SEG_ACCESS))
		*ret = ROUTE_ACCESS;
	else if (n == 5 && seg_is(seg[3], VMF_SEG_VERSIONS))
		*ret = ROUTE_VERSION;
	else if (n == 6 && seg_is(seg[3], VMF_SEG_VERSIONS) &&
		 seg_is(seg[5], VMF_SEG_MANIFEST))
		*ret = ROUTE_MANIFEST;
	else if (n == 6 && seg_is(seg[3], VMF_SEG_VERSIONS) &&
		 seg_is(seg[5], VMF_SEG_DATA))
		*ret = ROUTE_DATA;
	else if (n == 6 && seg_is(seg[3], VMF_SEG_VERSIONS) &&
		 seg_is(seg[5], VMF_SEG_PROFILE))
		*ret = ROUTE_PROFILE;
	else
		return -ENOENT;
	if (n >= 3 && *ret != ROUTE_MISSING)
		*ret_name = &seg[2]; /* NAME, or HEX for ROUTE_BLOCK */
	if (n == 6 || *ret == ROUTE_VERSION)
		*ret_num = &seg[4];
	return 0;
}

const char *route_methods(enum route_id r)
{
	switch (r) {
	case ROUTE_COMMIT:
	case ROUTE_HISTORY:
		return "GET, HEAD, POST";
	case ROUTE_LEASE:
	case ROUTE_PINS:
		return "POST, DELETE";
	case ROUTE_VM:
		return "GET, HEAD, POST, DELETE";
	case ROUTE_CONSOLE:
		return "GET, POST";
	case ROUTE_VNC:
		return "GET";
	case ROUTE_MISSING:
	case ROUTE_VNC_TICKET:
		return "POST";
	case ROUTE_BLOCK:
		return "PUT";
	case ROUTE_PROFILE:
		return "GET, HEAD, PUT";
	default:
		return "GET, HEAD";
	}
}

bool route_method_allowed(enum route_id r, const char *method)
{
	size_t n = strlen(method);

	/* Whole entries of the list only: "GET" is not "GE". */
	for (const char *p = route_methods(r); *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && memcmp(p, method, n) == 0)
			return true;
		p += len;
		p += strspn(p, ", ");
	}
	return false;
}

/* Plain decimal, no sign, no leading zero: one spelling per version,
 * so one URL (and one cache entry) per immutable version. */
static int parse_version(const char *s, uint64_t *ret)
{
	if ((s[0] == '0' && s[1]) || strlen(s) > 20)
		return -EINVAL;
	return parse_u64(s, ret);
}

/* Check the route's parameters into ret; sets ret->error if bad. */
static int take_params(const struct seg *name, const struct seg *num,
		       struct route_match *ret)
{
	char hex[VMF_HASH_HEX_LEN + 1];
	char dec[21]; /* a decimal uint64_t */

	if (name && ret->route == ROUTE_BLOCK) {
		/* Not decoded: a hash is hex digits, nothing to escape. */
		if (name->len != VMF_HASH_HEX_LEN)
			goto bad_hash;
		memcpy(hex, name->p, name->len);
		hex[name->len] = '\0';
		if (hash_from_hex(hex, ret->hash, VMF_HASH_LEN) < 0)
			goto bad_hash;
		return 0;
	}
	if (name && (percent_decode(*name, ret->name, sizeof(ret->name)) < 0 ||
		     !image_name_valid(ret->name))) {
		ret->name[0] = '\0';
		ret->error = "invalid image name";
		return -EINVAL;
	}
	if (num && (percent_decode(*num, dec, sizeof(dec)) < 0 ||
		    parse_version(dec, &ret->version) < 0)) {
		ret->name[0] = '\0';
		ret->version = 0;
		ret->error = "invalid version number";
		return -EINVAL;
	}
	return 0;
bad_hash:
	memset(ret->hash, 0, sizeof(ret->hash));
	ret->error = "invalid block hash (want 64 hex digits)";
	return -EINVAL;
}

int route_parse(const char *method, const char *url, struct route_match *ret)
{
	struct seg seg[ROUTE_MAX_SEGMENTS];
	const struct seg *name, *num;
	int n;

	memset(ret, 0, sizeof(*ret));
	n = split_path(url, seg);
	if (n < 0 || match_route(seg, n, &ret->route, &name, &num) < 0) {
		ret->error = "no such route";
		return 404;
	}
	if (!route_method_allowed(ret->route, method)) {
		ret->error = "method not allowed here";
		return 405;
	}
	/* One path, two routes: the history is read, a commit written. */
	if (ret->route == ROUTE_COMMIT && strcmp(method, "POST") != 0)
		ret->route = ROUTE_HISTORY;
	if (take_params(name, num, ret) < 0)
		return 400;
	return 0;
}
