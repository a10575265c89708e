/* SPDX-License-Identifier: MIT */
/* Plain servers: descriptor, manifest, redirects, range probe.  See
 * plain.h.  URLs are taken apart and resolved by libcurl's URL API
 * (curl_url_*), the descriptor by jansson: nothing is parsed by hand. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cleanup.h"
#include "hash.h"
#include "log.h"
#include "util.h"

#include "fetch.h"
#include "plain.h"
#include "remote.h"

/* A manifest larger than this is refused (a 512 TiB image at 64 KiB
 * blocks): it is held in memory whole. */
#define PLAIN_MANIFEST_MAX (1ull << 30)

static void curl_url_cleanupp(CURLU **h)
{
	if (*h)
		curl_url_cleanup(*h);
}

static void curl_freep(char **p)
{
	if (*p)
		curl_free(*p);
}

#define _cleanup_curlu_	  __attribute__((cleanup(curl_url_cleanupp)))
#define _cleanup_curlstr_ __attribute__((cleanup(curl_freep)))

/* Parse url into a new handle; NULL if it is not a URL. */
static CURLU *url_parse(const char *url)
{
	CURLU *h = curl_url();

	if (h && curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK) {
		curl_url_cleanup(h);
		h = NULL;
	}
	return h;
}

static bool str_ends(const char *s, const char *end)
{
	size_t n = strlen(s), e = strlen(end);

	return n >= e && strcmp(s + n - e, end) == 0;
}

bool plain_url_is_tls(const char *url)
{
	return strncasecmp(url, "https://", 8) == 0;
}

bool plain_url_is_plain(const char *url)
{
	_cleanup_curlu_ CURLU *h = url_parse(url);
	_cleanup_curlstr_ char *path = NULL;

	if (!plain_url_is_tls(url))
		return true;
	if (!h || curl_url_get(h, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		return false;
	return str_ends(path, ".json") || str_ends(path, "/");
}

/* Schemes a plain URL may have. */
static bool scheme_ok(const char *scheme)
{
	return !strcmp(scheme, "https") || !strcmp(scheme, "http") ||
	       !strcmp(scheme, "ftp");
}

/* The image's name from the URL's path (see plain.h). */
static int name_from_path(const char *path, char *out, size_t out_len)
{
	char buf[VMF_URL_MAX];
	char *slash, *seg;
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, path, n + 1);
	if (str_ends(buf, "/"))
		buf[strlen(buf) - 1] = '\0';
	else if (str_ends(buf, "/" VMF_EXPORT_DESCRIPTOR))
		buf[strlen(buf) - strlen("/" VMF_EXPORT_DESCRIPTOR)] = '\0';
	else if (str_ends(buf, ".json"))
		buf[strlen(buf) - 5] = '\0';
	else
		return -EINVAL;
	slash = strrchr(buf, '/');
	seg = slash ? slash + 1 : buf;
	n = strlen(seg);
	if (!image_name_valid(seg) || n >= out_len)
		return -EINVAL;
	memcpy(out, seg, n + 1);
	return 0;
}

int plain_parse_url(const char *url, struct remote_url *ret,
		    const char **ret_why)
{
	_cleanup_curlu_ CURLU *h = url_parse(url);
	_cleanup_curlstr_ char *scheme = NULL, *host = NULL, *port = NULL;
	_cleanup_curlstr_ char *path = NULL, *user = NULL, *base = NULL;
	uint8_t sum[VMF_HASH_LEN];
	char hex[VMF_HASH_HEX_LEN + 1];
	struct remote_url u;
	size_t i;

	memset(&u, 0, sizeof(u));
	if (!h || curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
		CURLUE_OK ||
	    curl_url_get(h, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		*ret_why = "not a URL";
		return -EINVAL;
	}
	if (!scheme_ok(scheme)) {
		*ret_why = "a plain export's URL starts with https://, ftp:// "
			   "or http://";
		return -EINVAL;
	}
	if (curl_url_get(h, CURLUPART_USER, &user, 0) == CURLUE_OK) {
		*ret_why = "credentials in the URL are not supported";
		return -EINVAL;
	}
	if (name_from_path(path, u.name, sizeof(u.name)) < 0) {
		*ret_why = "a plain export's URL names its descriptor "
			   "(.../NAME/" VMF_EXPORT_DESCRIPTOR
			   ", or .../NAME/), and NAME must be a valid image "
			   "name";
		return -EINVAL;
	}
	/* Display and identity: without query and fragment (a CDN's signed
	 * query is a secret, and may change between mounts). */
	curl_url_set(h, CURLUPART_QUERY, NULL, 0);
	curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0);
	if (curl_url_get(h, CURLUPART_URL, &base, 0) != CURLUE_OK ||
	    strlen(base) >= sizeof(u.base) ||
	    strlen(host) + strlen(port) + 2 + 13 >= sizeof(u.host_port)) {
		*ret_why = "URL too long";
		return -EINVAL;
	}
	snprintf(u.base, sizeof(u.base), "%s", base);
	hash_sha256(base, strlen(base), sum);
	hash_to_hex(sum, 6, hex);
	snprintf(u.host_port, sizeof(u.host_port), "%s_%s-%s", host, port, hex);
	for (i = 0; u.host_port[i]; i++)
		if (u.host_port[i] == ':' || u.host_port[i] == '[' ||
		    u.host_port[i] == ']' || u.host_port[i] == '/')
			u.host_port[i] = '_';
	*ret = u;
	return 0;
}

int plain_or_remote_url(const char *url, struct remote_url *ret,
			bool *ret_plain, const char **ret_why)
{
	*ret_plain = plain_url_is_plain(url);
	if (*ret_plain)
		return plain_parse_url(url, ret, ret_why);
	return remote_parse_url(url, ret, ret_why);
}

/* url's scheme into buf ("" if none). */
static void url_scheme(const char *url, char *buf, size_t len)
{
	_cleanup_curlu_ CURLU *h = url_parse(url);
	_cleanup_curlstr_ char *s = NULL;

	buf[0] = '\0';
	if (h && curl_url_get(h, CURLUPART_SCHEME, &s, 0) == CURLUE_OK)
		snprintf(buf, len, "%s", s);
}

/* Run *tmpl against url (VMF_URL_MAX, updated in place), following
 * up to VMF_EXPORT_REDIRECTS redirects ourselves: each hop must keep
 * the scheme's security (https only to https).  what names the file for
 * messages.  Returns as fetch_run(), or -ELOOP/-EPROTO; *tmpl holds the
 * last request's results. */
static int fetch_follow(struct fetch *f, struct fetch_req *tmpl, char *url,
			const char *what, char *why, size_t why_len)
{
	char target[VMF_URL_MAX], s0[16], s1[16];
	struct fetch_req req;
	int r;

	for (unsigned hop = 0;; hop++) {
		req = *tmpl;
		req.path = url;
		req.redirect = target;
		req.redirect_len = sizeof(target);
		r = fetch_run(f, &req);
		*tmpl = req;
		if (r != -EREMCHG)
			break;
		if (hop == VMF_EXPORT_REDIRECTS) {
			snprintf(why, why_len,
				 "%s: more than %d redirects (last: %s)", what,
				 VMF_EXPORT_REDIRECTS, req.errmsg);
			return -ELOOP;
		}
		url_scheme(url, s0, sizeof(s0));
		url_scheme(target, s1, sizeof(s1));
		if (!strcmp(s0, "https") && strcmp(s1, "https") != 0) {
			snprintf(why, why_len,
				 "%s: redirected from https:// to %s://: "
				 "refused (a redirect must not drop TLS)",
				 what, s1);
			return -EPROTO;
		}
		log_info("%s: %.*s redirects to %.*s: resolved once, every "
			 "request goes there",
			 what, no_query_len(url), url, no_query_len(target),
			 target);
		snprintf(url, VMF_URL_MAX, "%s", target);
	}
	if (r < 0)
		snprintf(why, why_len, "%s %.*s: %s", what, no_query_len(url),
			 url, req.errmsg);
	return r;
}

/* Resolve rel against base (the descriptor's final URL) into out. */
static int url_resolve(const char *base, const char *rel, char *out,
		       size_t out_len)
{
	_cleanup_curlu_ CURLU *h = url_parse(base);
	_cleanup_curlstr_ char *s = NULL;

	if (!h || curl_url_set(h, CURLUPART_URL, rel, 0) != CURLUE_OK ||
	    curl_url_get(h, CURLUPART_URL, &s, 0) != CURLUE_OK ||
	    strlen(s) >= out_len)
		return -EBADMSG;
	snprintf(out, out_len, "%s", s);
	return 0;
}

struct descriptor {
	json_int_t format, version, size, block_size, blocks, manifest_size;
	const char *name, *manifest_sha256, *data, *manifest;
};

/* Fields of the descriptor (borrowed from root). */
static int descriptor_parse(json_t *root, struct descriptor *d, char *why,
			    size_t why_len)
{
	json_error_t jerr;

	if (json_unpack_ex(root, &jerr, 0,
			   "{s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:s}",
			   "vmferry_export", &d->format, "name", &d->name,
			   "version", &d->version, "size", &d->size,
			   "block_size", &d->block_size, "blocks", &d->blocks,
			   "manifest_size", &d->manifest_size,
			   "manifest_sha256", &d->manifest_sha256, "data",
			   &d->data, "manifest", &d->manifest) < 0) {
		snprintf(why, why_len, "the export's descriptor: %s",
			 jerr.text);
		return -EBADMSG;
	}
	if (d->format != VMF_EXPORT_FORMAT) {
		snprintf(
		    why, why_len,
		    "the export's descriptor has format %" JSON_INTEGER_FORMAT
		    ", this client reads format %d",
		    d->format, VMF_EXPORT_FORMAT);
		return -EBADMSG;
	}
	if (d->version < 1 || d->size < 0 || d->block_size <= 0 ||
	    d->blocks < 0 || d->manifest_size <= 0 ||
	    (uint64_t)d->manifest_size > PLAIN_MANIFEST_MAX ||
	    strlen(d->manifest_sha256) != VMF_HASH_HEX_LEN) {
		snprintf(why, why_len,
			 "the export's descriptor has a field out of range");
		return -EBADMSG;
	}
	return 0;
}

/* GET the descriptor; resolve the data and manifest URLs against where
 * it was finally found. */
static int get_descriptor(struct fetch *f, char *url, struct plain_source *s,
			  struct descriptor *d, json_t **ret_root, char *why,
			  size_t why_len)
{
	_cleanup_free_ char *buf = malloc(VMF_JSON_MAX);
	struct fetch_req req = {0};
	json_error_t jerr;
	json_t *root;
	int r;

	if (!buf)
		return -ENOMEM;
	req.buf = buf;
	req.buf_len = VMF_JSON_MAX;
	req.prio = FETCH_PRIO_DEMAND;
	r = fetch_follow(f, &req, url, "descriptor", why, why_len);
	if (r < 0)
		return r;
	root = json_loadb(buf, req.got, 0, &jerr);
	if (!root) {
		snprintf(why, why_len,
			 "the export's descriptor is not JSON: %s", jerr.text);
		return -EBADMSG;
	}
	r = descriptor_parse(root, d, why, why_len);
	if (r == 0 &&
	    (url_resolve(url, d->data, s->data_url, sizeof(s->data_url)) < 0 ||
	     url_resolve(url, d->manifest, s->manifest_url,
			 sizeof(s->manifest_url)) < 0)) {
		snprintf(why, why_len,
			 "the export's descriptor names a bad data or "
			 "manifest URL");
		r = -EBADMSG;
	}
	if (r < 0) {
		json_decref(root);
		return r;
	}
	snprintf(s->name, sizeof(s->name), "%s", d->name);
	*ret_root = root;
	return 0;
}

/* GET the whole manifest and check it: its SHA-256 (descriptor, pin),
 * its header against the descriptor. */
static int get_manifest(struct fetch *f, struct plain_source *s,
			const struct descriptor *d, const uint8_t *pin,
			char *why, size_t why_len)
{
	struct fetch_req req = {0};
	uint8_t want[VMF_HASH_LEN];
	struct manifest_header h;
	int r;

	s->manifest_len = (size_t)d->manifest_size;
	s->manifest = malloc(s->manifest_len);
	if (!s->manifest)
		return -ENOMEM;
	req.buf = s->manifest;
	req.buf_len = s->manifest_len;
	req.prio = FETCH_PRIO_DEMAND;
	r = fetch_follow(f, &req, s->manifest_url, "manifest", why, why_len);
	if (r < 0)
		return r;
	hash_sha256(s->manifest, req.got, s->manifest_sha256);
	if (hash_from_hex(d->manifest_sha256, want, sizeof(want)) < 0 ||
	    req.got != s->manifest_len ||
	    memcmp(want, s->manifest_sha256, sizeof(want)) != 0) {
		snprintf(why, why_len,
			 "the manifest (%zu bytes) does not match the "
			 "descriptor's manifest_sha256 and manifest_size",
			 req.got);
		return -EBADMSG;
	}
	if (pin && memcmp(pin, s->manifest_sha256, VMF_HASH_LEN) != 0) {
		snprintf(why, why_len,
			 "the manifest's SHA-256 is not the one given with "
			 "--manifest-sha256: refused");
		return -EKEYREJECTED;
	}
	if (manifest_header_parse(s->manifest, s->manifest_len, &h) < 0 ||
	    manifest_encoded_size(&h) != s->manifest_len) {
		snprintf(why, why_len, "the manifest does not parse");
		return -EBADMSG;
	}
	if (h.image_size != (uint64_t)d->size ||
	    h.block_size != (uint64_t)d->block_size ||
	    h.nblocks != (uint64_t)d->blocks ||
	    h.version != (uint64_t)d->version) {
		snprintf(why, why_len,
			 "the manifest (size %" PRIu64 ", block size %" PRIu32
			 ", version %" PRIu64
			 ") does not match the export's descriptor",
			 h.image_size, h.block_size, h.version);
		return -EBADMSG;
	}
	s->hdr = h;
	return 0;
}

/* One byte of the data file: does the server honour Range, and is the
 * file as long as the image? */
static int probe_data(struct fetch *f, struct plain_source *s, char *why,
		      size_t why_len)
{
	struct fetch_req req = {0};
	uint8_t byte;
	uint64_t size = s->hdr.image_size;
	int r;

	s->ranges = true;
	if (size == 0)
		return 0;
	req.off = 0;
	req.len = 1;
	req.buf = &byte;
	req.buf_len = 1;
	req.prio = FETCH_PRIO_DEMAND;
	r = fetch_follow(f, &req, s->data_url, "data", why, why_len);
	if (r == -EBADMSG && req.http_status == 200) {
		s->ranges = false;
		if (req.content_length < 0) {
			snprintf(s->no_range, sizeof(s->no_range),
				 "answered a Range request with HTTP 200 and "
				 "no length (the whole file, chunked)");
			return 0;
		}
		snprintf(s->no_range, sizeof(s->no_range),
			 "answered a Range request with HTTP 200 (the whole "
			 "file, %" PRId64 " bytes)",
			 req.content_length);
		if ((uint64_t)req.content_length == size)
			return 0;
		snprintf(why, why_len,
			 "the data file is %" PRId64 " bytes, the manifest "
			 "says %" PRIu64,
			 req.content_length, size);
		return -EBADMSG;
	}
	if (r < 0)
		return r;
	if (req.range_total && req.range_total != size) {
		snprintf(why, why_len,
			 "the data file is %" PRIu64 " bytes, the manifest "
			 "says %" PRIu64,
			 req.range_total, size);
		return -EBADMSG;
	}
	return 0;
}

int plain_open(struct fetch *f, const char *url, const uint8_t *pin,
	       struct plain_source *ret, char *why, size_t why_len)
{
	_cleanup_curlu_ CURLU *h = url_parse(url);
	_cleanup_curlstr_ char *path = NULL, *durl = NULL;
	struct plain_source s;
	struct descriptor d;
	char cur[VMF_URL_MAX];
	json_t *root = NULL;
	int r;

	memset(&s, 0, sizeof(s));
	if (!h || curl_url_get(h, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		snprintf(why, why_len, "not a URL");
		return -EINVAL;
	}
	if (str_ends(path, "/")) {
		char p[VMF_URL_MAX];

		snprintf(p, sizeof(p), "%s" VMF_EXPORT_DESCRIPTOR, path);
		if (curl_url_set(h, CURLUPART_PATH, p, 0) != CURLUE_OK) {
			snprintf(why, why_len, "not a URL");
			return -EINVAL;
		}
	}
	if (curl_url_get(h, CURLUPART_URL, &durl, 0) != CURLUE_OK ||
	    strlen(durl) >= sizeof(cur)) {
		snprintf(why, why_len, "URL too long");
		return -EINVAL;
	}
	snprintf(cur, sizeof(cur), "%s", durl);
	r = get_descriptor(f, cur, &s, &d, &root, why, why_len);
	if (r == 0)
		r = get_manifest(f, &s, &d, pin, why, why_len);
	json_decref(root); /* d's strings are root's */
	if (r == 0)
		r = probe_data(f, &s, why, why_len);
	if (r < 0) {
		plain_source_fini(&s);
		return r;
	}
	*ret = s;
	return 0;
}

void plain_source_fini(struct plain_source *s)
{
	free(s->manifest);
	s->manifest = NULL;
}
