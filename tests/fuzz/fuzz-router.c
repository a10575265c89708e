/* SPDX-License-Identifier: MIT */
/* libFuzzer target for server/route.c: the method and URL of any
 * request, before the server looks at anything else.  The input is
 * "METHOD\nURL" (or only a URL, sent with GET), each cut at its first
 * NUL.  route_parse() is compared with a model (the in-place router
 * http.c had before route.c, with an exact method list), and its
 * answers must hold up on their own:
 *   - a NAME returned is valid by image_name_valid(): no '/', not "."
 *     or "..", nothing outside [A-Za-z0-9._-];
 *   - N is the decimal spelling of the version returned, HEX of the
 *     hash; the canonical URL built from the answer routes the same;
 *   - 404 does not depend on the method; 405 names a route whose own
 *     methods are allowed; 400 only for routes with parameters.
 * Invariant violations abort. */
#undef NDEBUG
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "util.h"

#include "route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MODEL_MAX_SEGMENTS 8

struct model {
	int status;
	enum route_id route;
	char name[VMF_NAME_MAX + 1];
	char num[32]; /* N as decoded */
	uint64_t version;
	uint8_t hash[VMF_HASH_LEN];
};

/* The model's method lists, one entry per string. */
static bool model_method_ok(enum route_id r, const char *method)
{
	static const char *const get[] = {"GET", "HEAD", NULL};
	static const char *const commit[] = {"GET", "HEAD", "POST", NULL};
	static const char *const lease[] = {"POST", "DELETE", NULL};
	static const char *const post[] = {"POST", NULL};
	static const char *const put[] = {"PUT", NULL};
	static const char *const profile[] = {"GET", "HEAD", "PUT", NULL};
	static const char *const vm[] = {"GET", "HEAD", "POST", "DELETE", NULL};
	static const char *const console[] = {"GET", "POST", NULL};
	static const char *const vnc[] = {"GET", NULL};
	const char *const *list = get;

	if (r == ROUTE_COMMIT || r == ROUTE_HISTORY)
		list = commit;
	else if (r == ROUTE_LEASE || r == ROUTE_PINS)
		list = lease;
	else if (r == ROUTE_MISSING || r == ROUTE_VNC_TICKET)
		list = post;
	else if (r == ROUTE_BLOCK)
		list = put;
	else if (r == ROUTE_PROFILE)
		list = profile;
	else if (r == ROUTE_VM)
		list = vm;
	else if (r == ROUTE_CONSOLE)
		list = console;
	else if (r == ROUTE_VNC)
		list = vnc;
	for (; *list; list++)
		if (strcmp(*list, method) == 0)
			return true;
	return false;
}

static int model_decode(char *s)
{
	char *out = s;

	for (; *s; s++) {
		unsigned v;

		if (*s != '%') {
			*out++ = *s;
			continue;
		}
		if (!isxdigit((unsigned char)s[1]) ||
		    !isxdigit((unsigned char)s[2]))
			return -EINVAL;
		(void)sscanf(s + 1, "%2x", &v);
		if (v == 0)
			return -EINVAL;
		*out++ = (char)v;
		s += 2;
	}
	*out = '\0';
	return 0;
}

/* The router as http.c had it: split a copy in place, then match. */
static void model_route(const char *method, const char *url, struct model *m)
{
	char *copy = strdup(url), *seg[MODEL_MAX_SEGMENTS], *p, *name = NULL,
	     *num = NULL;
	int n = 0;

	assert(copy);
	memset(m, 0, sizeof(*m));
	m->status = 404;
	if (copy[0] != '/')
		goto out;
	for (p = copy + 1;; p++) {
		if (n == MODEL_MAX_SEGMENTS)
			goto out;
		seg[n++] = p;
		p = strchr(p, '/');
		if (!p)
			break;
		*p = '\0';
	}
	if (n < 2 || strcmp(seg[0], "v1") != 0)
		goto out;
	if (n == 2 && strcmp(seg[1], "stats") == 0)
		m->route = ROUTE_STATS;
	else if (n == 3 && strcmp(seg[1], "blocks") == 0)
		m->route =
		    strcmp(seg[2], "missing") ? ROUTE_BLOCK : ROUTE_MISSING;
	else if (strcmp(seg[1], "images") != 0)
		goto out;
	else if (n == 2)
		m->route = ROUTE_IMAGES;
	else if (n == 3)
		m->route = ROUTE_IMAGE;
	else if (n == 4 && strcmp(seg[3], "versions") == 0)
		m->route = ROUTE_COMMIT;
	else if (n == 4 && strcmp(seg[3], "lease") == 0)
		m->route = ROUTE_LEASE;
	else if (n == 4 && strcmp(seg[3], "pins") == 0)
		m->route = ROUTE_PINS;
	else if (n == 4 && strcmp(seg[3], "vm") == 0)
		m->route = ROUTE_VM;
	else if (n == 4 && strcmp(seg[3], "console") == 0)
		m->route = ROUTE_CONSOLE;
	else if (n == 4 && strcmp(seg[3], "vnc") == 0)
		m->route = ROUTE_VNC;
	else if (n == 5 && strcmp(seg[3], "vnc") == 0 &&
		 strcmp(seg[4], "ticket") == 0)
		m->route = ROUTE_VNC_TICKET;
	else if (n == 4 && strcmp(seg[3], "access") == 0)
		m->route = ROUTE_ACCESS;
	else if (n == 5 && strcmp(seg[3], "versions") == 0)
		m->route = ROUTE_VERSION;
	else if (n == 6 && strcmp(seg[3], "versions") == 0 &&
		 strcmp(seg[5], "manifest") == 0)
		m->route = ROUTE_MANIFEST;
	else if (n == 6 && strcmp(seg[3], "versions") == 0 &&
		 strcmp(seg[5], "data") == 0)
		m->route = ROUTE_DATA;
	else if (n == 6 && strcmp(seg[3], "versions") == 0 &&
		 strcmp(seg[5], "profile") == 0)
		m->route = ROUTE_PROFILE;
	else
		goto out;
	if (n >= 3 && m->route != ROUTE_MISSING)
		name = seg[2];
	if (n == 6 || m->route == ROUTE_VERSION)
		num = seg[4];
	m->status = 405;
	if (!model_method_ok(m->route, method))
		goto out;
	if (m->route == ROUTE_COMMIT && strcmp(method, "POST") != 0)
		m->route = ROUTE_HISTORY;
	m->status = 400;
	if (m->route == ROUTE_BLOCK) {
		if (hash_from_hex(name, m->hash, VMF_HASH_LEN) < 0) {
			memset(m->hash, 0, sizeof(m->hash));
			goto out;
		}
	} else if (name) {
		if (model_decode(name) < 0 || !image_name_valid(name))
			goto out;
		snprintf(m->name, sizeof(m->name), "%s", name);
	}
	if (num) {
		if (model_decode(num) < 0 || strlen(num) > 20 ||
		    (num[0] == '0' && num[1]) ||
		    parse_u64(num, &m->version) < 0) {
			m->version = 0;
			m->name[0] = '\0'; /* route_parse() clears it too */
			goto out;
		}
		snprintf(m->num, sizeof(m->num), "%s", num);
	}
	m->status = 0;
out:
	if (m->status != 0 && m->status != 400)
		m->name[0] = '\0';
	free(copy);
}

static bool has_name(enum route_id r)
{
	return r != ROUTE_IMAGES && r != ROUTE_STATS && r != ROUTE_MISSING &&
	       r != ROUTE_BLOCK;
}

static bool has_version(enum route_id r)
{
	return r == ROUTE_VERSION || r == ROUTE_MANIFEST || r == ROUTE_DATA ||
	       r == ROUTE_PROFILE;
}

static void check_name(const char *name)
{
	assert(image_name_valid(name));
	assert(name[0] && name[0] != '.');
	assert(strcmp(name, "..") != 0 && strcmp(name, ".") != 0);
	assert(!strchr(name, '/') && !strchr(name, '%'));
	for (const char *p = name; *p; p++)
		assert(isalnum((unsigned char)*p) || strchr("._-", *p));
}

/* The canonical URL of a match routes to the very same match. */
static void check_canonical(const char *method, const struct route_match *m)
{
	static const char *const last[] = {
	    [ROUTE_MANIFEST] = "manifest", [ROUTE_DATA] = "data",
	    [ROUTE_LEASE] = "lease",	   [ROUTE_PINS] = "pins",
	    [ROUTE_COMMIT] = "",	   [ROUTE_HISTORY] = "",
	    [ROUTE_PROFILE] = "profile",   [ROUTE_VM] = "vm",
	    [ROUTE_CONSOLE] = "console",   [ROUTE_ACCESS] = "access",
	    [ROUTE_VNC] = "vnc",	   [ROUTE_VNC_TICKET] = "vnc/ticket"};
	char url[256], hex[VMF_HASH_HEX_LEN + 1];
	struct route_match again;

	switch (m->route) {
	case ROUTE_IMAGES:
		snprintf(url, sizeof(url), "/v1/images");
		break;
	case ROUTE_STATS:
		snprintf(url, sizeof(url), "/v1/stats");
		break;
	case ROUTE_MISSING:
		snprintf(url, sizeof(url), "/v1/blocks/missing");
		break;
	case ROUTE_BLOCK:
		hash_to_hex(m->hash, VMF_HASH_LEN, hex);
		snprintf(url, sizeof(url), "/v1/blocks/%s", hex);
		break;
	case ROUTE_IMAGE:
		snprintf(url, sizeof(url), "/v1/images/%s", m->name);
		break;
	case ROUTE_COMMIT:
	case ROUTE_HISTORY:
		snprintf(url, sizeof(url), "/v1/images/%s/versions", m->name);
		break;
	case ROUTE_LEASE:
	case ROUTE_PINS:
	case ROUTE_VM:
	case ROUTE_CONSOLE:
	case ROUTE_VNC:
	case ROUTE_VNC_TICKET:
	case ROUTE_ACCESS:
		snprintf(url, sizeof(url), "/v1/images/%s/%s", m->name,
			 last[m->route]);
		break;
	case ROUTE_VERSION:
		snprintf(url, sizeof(url), "/v1/images/%s/versions/%" PRIu64,
			 m->name, m->version);
		break;
	case ROUTE_MANIFEST:
	case ROUTE_DATA:
	case ROUTE_PROFILE:
		snprintf(url, sizeof(url),
			 "/v1/images/%s/versions/%" PRIu64 "/%s", m->name,
			 m->version, last[m->route]);
		break;
	}
	assert(route_parse(method, url, &again) == 0);
	assert(memcmp(&again, m, sizeof(again)) == 0);
}

static void check_one(const char *method, const char *url)
{
	struct route_match m, other;
	struct model want;
	int r;

	memset(&m, 0xa5, sizeof(m)); /* padding too, for memcmp below */
	r = route_parse(method, url, &m);
	model_route(method, url, &want);
	assert(r == want.status);
	assert((r == 0) == (m.error == NULL));
	assert(strcmp(m.name, want.name) == 0);
	if (r == 404) {
		/* The path alone decides; nothing else is set. */
		assert(route_parse("GET", url, &other) == 404);
		assert(route_parse("POST", url, &other) == 404);
		assert(m.route == 0 && m.version == 0 && !m.name[0]);
		return;
	}
	assert(m.route == want.route);
	if (r == 405) {
		assert(!route_method_allowed(m.route, method));
		/* Each method in Allow gets past the method check. */
		assert(route_parse("POST", url, &other) != 404);
		for (const char *p = route_methods(m.route); *p;) {
			char one[16];
			size_t len = strcspn(p, ",");

			assert(len < sizeof(one));
			memcpy(one, p, len);
			one[len] = '\0';
			assert(route_method_allowed(m.route, one));
			r = route_parse(one, url, &other);
			assert(r == 0 || r == 400);
			p += len;
			p += strspn(p, ", ");
		}
		return;
	}
	assert(route_method_allowed(m.route, method) ||
	       (m.route == ROUTE_HISTORY &&
		route_method_allowed(ROUTE_COMMIT, method)));
	if (r == 400) {
		assert(has_name(m.route) || m.route == ROUTE_BLOCK);
		assert(m.version == 0);
		return;
	}
	assert(r == 0);
	assert(m.version == want.version);
	assert(memcmp(m.hash, want.hash, sizeof(m.hash)) == 0);
	if (has_name(m.route))
		check_name(m.name);
	else
		assert(m.name[0] == '\0');
	if (has_version(m.route)) {
		char dec[32];

		snprintf(dec, sizeof(dec), "%" PRIu64, m.version);
		assert(strcmp(dec, want.num) == 0);
	} else {
		assert(m.version == 0);
	}
	if (m.route != ROUTE_BLOCK)
		for (size_t i = 0; i < VMF_HASH_LEN; i++)
			assert(m.hash[i] == 0);
	check_canonical(method, &m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *nl;
	const char *method = "GET", *url = s;

	assert(s);
	memcpy(s, data, size);
	s[size] = '\0';
	nl = memchr(s, '\n', size);
	if (nl) {
		*nl = '\0';
		method = s;
		url = nl + 1;
	}
	check_one(method, url);
	free(s);
	return 0;
}
