/* SPDX-License-Identifier: MIT */
/* The lifecycle record (see lifecycle.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"

#include "keys.h"
#include "lifecycle.h"

#define LIFECYCLE_FILE	    "/lifecycle.json"
#define LIFECYCLE_AAD_MAGIC "vmferry-lifecycle-v1"
#define LIFECYCLE_JSON_MAX  (16 * 1024)
/* The canonical text sealed: the URL and seven numbers. */
#define CANON_MAX (LIFECYCLE_URL_MAX + 8 * 24)

static int path_of(const char *dir, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s" LIFECYCLE_FILE, dir);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The fields that matter, in one spelling. */
static size_t canon(const struct lifecycle *l, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 "%s\n%" PRIu64 "\n%" PRIu64 "\n%d\n%" PRId64
			 "\n%" PRId64 "\n%" PRId64 "\n%" PRId64,
			 l->url, l->version, l->image_size,
			 l->ephemeral ? 1 : 0, l->expires, l->max_offline_s,
			 l->last_contact, l->last_seen);

	return n < 0 || (size_t)n >= len ? 0 : (size_t)n;
}

static void
aad_of(const uint8_t cache_id[CRYPTO_CACHE_ID_LEN],
       uint8_t out[sizeof(LIFECYCLE_AAD_MAGIC) - 1 + CRYPTO_CACHE_ID_LEN])
{
	memcpy(out, LIFECYCLE_AAD_MAGIC, sizeof(LIFECYCLE_AAD_MAGIC) - 1);
	memcpy(out + sizeof(LIFECYCLE_AAD_MAGIC) - 1, cache_id,
	       CRYPTO_CACHE_ID_LEN);
}

static uint64_t u64_or_zero(json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (uint64_t)v : 0;
}

/* The plain fields and the sealed hex (a new string, may be NULL). */
static int read_both(const char *dir, struct lifecycle *ret, char **ret_sealed)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_(json_decrefp) json_t *j = NULL;
	char path[4096];
	const char *url, *sealed = NULL;
	json_int_t version, size, expires, max_off, contact, seen;
	int ephemeral, r;
	size_t len;

	r = path_of(dir, path, sizeof(path));
	if (r < 0)
		return r;
	r = read_file(path, LIFECYCLE_JSON_MAX, &text, &len);
	if (r < 0)
		return r == -EFBIG ? -EBADMSG : r;
	j = json_loadb(text, len, 0, NULL);
	if (!j ||
	    json_unpack(j, "{s:s, s:I, s:I, s:b, s:I, s:I, s:I, s:I, s?s}",
			"url", &url, "version", &version, "image_size", &size,
			"ephemeral", &ephemeral, "expires", &expires,
			"max_offline", &max_off, "last_contact", &contact,
			"last_seen", &seen, "sealed", &sealed) < 0 ||
	    strlen(url) >= LIFECYCLE_URL_MAX || version < 0 || size < 0 ||
	    expires < 0 || max_off < 0)
		return -EBADMSG;
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->url, sizeof(ret->url), "%s", url);
	ret->version = (uint64_t)version;
	ret->image_size = (uint64_t)size;
	ret->ephemeral = ephemeral;
	ret->expires = expires;
	ret->max_offline_s = max_off;
	ret->last_contact = contact;
	ret->last_seen = seen;
	ret->blocks_data = u64_or_zero(j, "blocks_data");
	ret->blocks_cached = u64_or_zero(j, "blocks_cached");
	ret->blocks_dirty = u64_or_zero(j, "blocks_dirty");
	if (ret_sealed) {
		*ret_sealed = sealed ? strdup(sealed) : NULL;
		if (sealed && !*ret_sealed)
			return -ENOMEM;
	}
	return 0;
}

int lifecycle_read(const char *dir, struct lifecycle *ret)
{
	return read_both(dir, ret, NULL);
}

int lifecycle_verify(const char *dir, const uint8_t data_key[CRYPTO_KEY_LEN],
		     const uint8_t cache_id[CRYPTO_CACHE_ID_LEN],
		     struct lifecycle *ret)
{
	_cleanup_free_ char *sealed_hex = NULL;
	uint8_t aad[sizeof(LIFECYCLE_AAD_MAGIC) - 1 + CRYPTO_CACHE_ID_LEN];
	uint8_t sealed[CANON_MAX + CRYPTO_OVERHEAD];
	char want[CANON_MAX], got[CANON_MAX + 1];
	size_t hexlen, n, wn;
	int r;

	r = read_both(dir, ret, &sealed_hex);
	if (r < 0)
		return r;
	if (!sealed_hex)
		return -EBADMSG;
	hexlen = strlen(sealed_hex);
	n = hexlen / 2;
	if (hexlen % 2 || n <= CRYPTO_OVERHEAD || n > sizeof(sealed) ||
	    hash_from_hex(sealed_hex, sealed, n) < 0)
		return -EBADMSG;
	aad_of(cache_id, aad);
	r = crypto_open(data_key, aad, sizeof(aad), sealed, n, got);
	if (r < 0)
		return -EBADMSG;
	got[n - CRYPTO_OVERHEAD] = '\0';
	wn = canon(ret, want, sizeof(want));
	if (wn == 0 || wn != n - CRYPTO_OVERHEAD || memcmp(want, got, wn) != 0)
		return -EBADMSG;
	return 0;
}

int lifecycle_write(const char *dir, const struct lifecycle *l,
		    const uint8_t data_key[CRYPTO_KEY_LEN],
		    const uint8_t cache_id[CRYPTO_CACHE_ID_LEN])
{
	uint8_t aad[sizeof(LIFECYCLE_AAD_MAGIC) - 1 + CRYPTO_CACHE_ID_LEN];
	uint8_t sealed[CANON_MAX + CRYPTO_OVERHEAD];
	char text[CANON_MAX], hex[2 * sizeof(sealed) + 1], path[4096];
	_cleanup_(json_decrefp) json_t *j = NULL;
	_cleanup_free_ char *out = NULL;
	size_t n;
	int r;

	r = path_of(dir, path, sizeof(path));
	if (r < 0)
		return r;
	n = canon(l, text, sizeof(text));
	if (n == 0)
		return -ENAMETOOLONG;
	aad_of(cache_id, aad);
	r = crypto_seal(data_key, aad, sizeof(aad), text, n, sealed);
	if (r < 0)
		return r;
	hash_to_hex(sealed, n + CRYPTO_OVERHEAD, hex);
	j = json_pack(
	    "{s:i, s:s, s:I, s:I, s:b, s:I, s:I, s:I, s:I, s:s}", "format", 1,
	    "url", l->url, "version", (json_int_t)l->version, "image_size",
	    (json_int_t)l->image_size, "ephemeral", l->ephemeral, "expires",
	    (json_int_t)l->expires, "max_offline", (json_int_t)l->max_offline_s,
	    "last_contact", (json_int_t)l->last_contact, "last_seen",
	    (json_int_t)l->last_seen, "sealed", hex);
	if (j && json_object_update_new(
		     j, json_pack("{s:I, s:I, s:I}", "blocks_data",
				  (json_int_t)l->blocks_data, "blocks_cached",
				  (json_int_t)l->blocks_cached, "blocks_dirty",
				  (json_int_t)l->blocks_dirty)) < 0) {
		json_decref(j);
		j = NULL;
	}
	out = j ? json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
	if (!out)
		return -ENOMEM;
	return write_file_atomic(path, out, strlen(out), 0600);
}

enum lifecycle_state lifecycle_check(const struct lifecycle *l, int64_t now,
				     int64_t *ret_left)
{
	int64_t left = INT64_MAX,
		seen = now > l->last_seen ? now : l->last_seen;
	enum lifecycle_state s = LIFECYCLE_OK;

	if (l->expires > 0) {
		left = l->expires - now;
		if (left <= 0)
			s = LIFECYCLE_EXPIRED;
	}
	if (l->max_offline_s > 0) {
		int64_t off_left = l->last_contact + l->max_offline_s - seen;

		if (off_left < left)
			left = off_left;
		if (off_left <= 0 && s == LIFECYCLE_OK)
			s = LIFECYCLE_OFFLINE_TOO_LONG;
	}
	if (ret_left)
		*ret_left = left;
	return s;
}

static void format_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) ||
	    !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "%" PRId64, t);
}

void lifecycle_format_left(int64_t left, char *buf, size_t len)
{
	if (left == INT64_MAX)
		snprintf(buf, len, "never");
	else if (left <= 0)
		snprintf(buf, len, "expired");
	else if (left >= 86400)
		snprintf(buf, len, "%" PRId64 "d %" PRId64 "h", left / 86400,
			 left % 86400 / 3600);
	else if (left >= 3600)
		snprintf(buf, len, "%" PRId64 "h %" PRId64 "m", left / 3600,
			 left % 3600 / 60);
	else
		snprintf(buf, len, "%" PRId64 "m %" PRId64 "s", left / 60,
			 left % 60);
}

void lifecycle_describe(const struct lifecycle *l, enum lifecycle_state s,
			char *buf, size_t len)
{
	char t[32], d[32];

	switch (s) {
	case LIFECYCLE_EXPIRED:
		format_time(l->expires, t, sizeof(t));
		snprintf(buf, len, "expired on %s", t);
		break;
	case LIFECYCLE_OFFLINE_TOO_LONG:
		format_time(l->last_contact, t, sizeof(t));
		lifecycle_format_left(l->max_offline_s, d, sizeof(d));
		snprintf(buf, len,
			 "offline for longer than the %s allowed (last "
			 "contact with the server %s)",
			 d, t);
		break;
	default:
		snprintf(buf, len, "valid");
		break;
	}
}

int lifecycle_destroy(const char *dir)
{
	int r = keys_destroy(dir), r2;

	/* Remove the files even if the key could not be overwritten. */
	r2 = rm_rf(dir);
	return r < 0 && r != -ENOENT ? r : r2;
}
