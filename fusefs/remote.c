/* SPDX-License-Identifier: MIT */
/* Client side of the HTTP API.  See remote.h.  Stateless. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "qemu.h"
#include "util.h"

#include "fetch.h"
#include "remote.h"

int remote_parse_url(const char *url, struct remote_url *ret,
		     const char **ret_why)
{
	const char *p, *slash, *name;
	struct remote_url u;
	size_t hlen;

	memset(&u, 0, sizeof(u));
	if (strncmp(url, "https://", 8) != 0) {
		*ret_why = "it must start with https://";
		return -EINVAL;
	}
	p = url + 8;
	slash = strchr(p, '/');
	if (!slash || slash == p) {
		*ret_why = "expected https://HOST[:PORT]/NAME";
		return -EINVAL;
	}
	hlen = (size_t)(slash - p);
	if (hlen >= sizeof(u.host_port) || memchr(p, '@', hlen) ||
	    memchr(p, '?', hlen)) {
		*ret_why = "bad host part";
		return -EINVAL;
	}
	name = slash + 1;
	if (!image_name_valid(name)) {
		*ret_why = "bad image name (letters, digits, '.', '_', '-'; "
			   "not starting with '.')";
		return -EINVAL;
	}
	snprintf(u.base, sizeof(u.base), "https://%.*s", (int)hlen, p);
	for (size_t i = 0; i < hlen; i++) {
		char c = p[i];

		u.host_port[i] = (c == ':' || c == '[' || c == ']') ? '_' : c;
	}
	snprintf(u.name, sizeof(u.name), "%s", name);
	*ret = u;
	return 0;
}

void remote_data_path(const char *name, uint64_t version, char *buf, size_t len)
{
	snprintf(buf, len,
		 VMF_PATH_IMAGES "/%s/" VMF_SEG_VERSIONS "/%" PRIu64
				 "/" VMF_SEG_DATA,
		 name, version);
}

void remote_manifest_path(const char *name, uint64_t version, char *buf,
			  size_t len)
{
	snprintf(buf, len,
		 VMF_PATH_IMAGES "/%s/" VMF_SEG_VERSIONS "/%" PRIu64
				 "/" VMF_SEG_MANIFEST,
		 name, version);
}

static int json_u64(json_t *o, const char *key, uint64_t *ret)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EBADMSG;
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

/* "expires": "2027-01-31T00:00:00Z" or Unix seconds. */
static int policy_time(json_t *j, int64_t *ret)
{
	const char *s = json_string_value(j), *end;
	struct tm tm;

	if (json_is_integer(j) && json_integer_value(j) > 0) {
		*ret = json_integer_value(j);
		return 0;
	}
	if (!s)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end)
		return -EINVAL;
	*ret = (int64_t)timegm(&tm);
	return *ret > 0 ? 0 : -EINVAL;
}

/* "max_offline": "7d" (parse_duration) or seconds, at least 1. */
static int policy_duration(json_t *j, uint64_t *ret)
{
	if (json_is_integer(j) && json_integer_value(j) > 0) {
		*ret = (uint64_t)json_integer_value(j);
		return 0;
	}
	if (!json_is_string(j) ||
	    parse_duration(json_string_value(j), ret) < 0 || *ret == 0)
		return -EINVAL;
	return 0;
}

static int parse_policy(json_t *policy, struct remote_image *img, char *ret_why)
{
	json_t *j;
	const char *mode;

	if (!json_is_object(policy))
		return 0;
	j = json_object_get(policy, "expires");
	if (j && policy_time(j, &img->expires) < 0) {
		snprintf(ret_why, 256,
			 "the image's policy has an invalid \"expires\" (want "
			 "\"YYYY-MM-DDTHH:MM:SSZ\" or Unix seconds)");
		return -EBADMSG;
	}
	j = json_object_get(policy, "max_offline");
	if (j && policy_duration(j, &img->max_offline_s) < 0) {
		snprintf(ret_why, 256,
			 "the image's policy has an invalid \"max_offline\" "
			 "(want a duration such as \"7d\", or seconds)");
		return -EBADMSG;
	}
	j = json_object_get(policy, "local_copy");
	mode = json_string_value(j);
	if (j && (!mode || (strcmp(mode, "keep") != 0 &&
			    strcmp(mode, "ephemeral") != 0))) {
		snprintf(ret_why, 256,
			 "the image's policy has an invalid \"local_copy\" "
			 "(want \"keep\" or \"ephemeral\")");
		return -EBADMSG;
	}
	img->ephemeral = mode && strcmp(mode, "ephemeral") == 0;
	qemu_policy_size(json_object_get(policy, "vm"), &img->vm_memory_mib,
			 &img->vm_cpus);
	return 0;
}

/* "lease": {"holder", "where", "since", "expires"} or null. */
static void parse_lease(json_t *l, struct remote_image *img)
{
	const char *holder = json_string_value(json_object_get(l, "holder"));
	const char *where = json_string_value(json_object_get(l, "where"));
	uint64_t since = 0, expires = 0;

	if (!json_is_object(l) || !holder || !where ||
	    json_u64(l, "since", &since) < 0 ||
	    json_u64(l, "expires", &expires) < 0)
		return;
	img->leased = true;
	snprintf(img->lease_holder, sizeof(img->lease_holder), "%s", holder);
	snprintf(img->lease_where, sizeof(img->lease_where), "%s", where);
	img->lease_since = (int64_t)since;
	img->lease_expires = (int64_t)expires;
}

/* GET into buf (room for len; req.got bytes arrive) at demand priority;
 * a fetch error's message goes to ret_why (256 bytes). */
static int get_into(struct fetch *f, const char *path, uint64_t off,
		    uint64_t len, void *buf, size_t buf_len,
		    struct fetch_req *req, char *ret_why)
{
	int r;

	req->path = path;
	req->off = off;
	req->len = len;
	req->buf = buf;
	req->buf_len = buf_len;
	req->prio = FETCH_PRIO_DEMAND;
	r = fetch_run(f, req);
	if (r < 0)
		snprintf(ret_why, 256, "%s", req->errmsg);
	return r;
}

/* GET path's JSON body (at most VMF_JSON_MAX bytes): 0 and a new
 * reference in *ret, a fetch error, or -EBADMSG if it is not JSON
 * (`what` names it in *ret_why, 256 bytes). */
static int get_json(struct fetch *f, const char *path, const char *what,
		    json_t **ret, char *ret_why)
{
	_cleanup_free_ char *buf = malloc(VMF_JSON_MAX);
	struct fetch_req req = {0};
	json_error_t jerr;
	int r;

	if (!buf)
		return -ENOMEM;
	r = get_into(f, path, 0, 0, buf, VMF_JSON_MAX, &req, ret_why);
	if (r < 0)
		return r;
	*ret = json_loadb(buf, req.got, 0, &jerr);
	if (!*ret) {
		snprintf(ret_why, 256, "%s is not JSON: %s", what, jerr.text);
		return -EBADMSG;
	}
	return 0;
}

/* version, size and block_size of o (and its lease) into img. */
static int parse_sizes(json_t *o, struct remote_image *img)
{
	uint64_t bs = 0;

	if (json_u64(o, "version", &img->version) < 0 ||
	    json_u64(o, "size", &img->size) < 0 ||
	    json_u64(o, "block_size", &bs) < 0 || bs > UINT32_MAX)
		return -EBADMSG;
	img->block_size = (uint32_t)bs;
	parse_lease(json_object_get(o, "lease"), img);
	return 0;
}

/* "manifest_sha256" of o, if there, into img: absent is allowed here
 * (remote_get_manifest() refuses then), malformed is not. */
static int parse_manifest_sha256(json_t *o, struct remote_image *img,
				 char *ret_why)
{
	const char *hex =
	    json_string_value(json_object_get(o, "manifest_sha256"));

	if (!json_object_get(o, "manifest_sha256"))
		return 0;
	if (!hex || strlen(hex) != VMF_HASH_HEX_LEN ||
	    hash_from_hex(hex, img->manifest_sha256,
			  sizeof(img->manifest_sha256)) < 0) {
		snprintf(ret_why, 256,
			 "image metadata has a malformed manifest_sha256");
		return -EBADMSG;
	}
	img->has_manifest_sha256 = true;
	return 0;
}

/* The fields of a version's metadata in o (GET /v1/images/NAME or
 * .../versions/N) into img: sizes and lease, manifest_size (0 if
 * absent), manifest_sha256 (if there). */
static int parse_version_meta(json_t *o, struct remote_image *img,
			      char *ret_why)
{
	int r;

	r = parse_sizes(o, img);
	if (r < 0) {
		snprintf(ret_why, 256,
			 "image metadata lacks version, size or block_size");
		return r;
	}
	if (json_u64(o, "manifest_size", &img->manifest_size) < 0)
		img->manifest_size = 0;
	return parse_manifest_sha256(o, img, ret_why);
}

int remote_get_image(struct fetch *f, const char *name,
		     struct remote_image *ret, char *ret_why)
{
	struct remote_image img = {0};
	char path[256];
	json_t *root;
	int r;

	snprintf(path, sizeof(path), VMF_PATH_IMAGES "/%s", name);
	r = get_json(f, path, "image metadata", &root, ret_why);
	if (r < 0)
		return r;
	r = parse_version_meta(root, &img, ret_why);
	if (r == 0)
		r = parse_policy(json_object_get(root, "policy"), &img,
				 ret_why);
	json_decref(root);
	if (r < 0)
		return r;
	*ret = img;
	return 0;
}

int remote_get_version(struct fetch *f, const char *name, uint64_t version,
		       struct remote_image *ret, char *ret_why)
{
	struct remote_image img = {0};
	char path[256];
	json_t *root;
	int r;

	snprintf(path, sizeof(path),
		 VMF_PATH_IMAGES "/%s/" VMF_SEG_VERSIONS "/%" PRIu64, name,
		 version);
	r = get_json(f, path, "version metadata", &root, ret_why);
	if (r < 0)
		return r;
	r = parse_version_meta(root, &img, ret_why);
	json_decref(root);
	if (r < 0)
		return r;
	if (img.version != version || !img.has_manifest_sha256) {
		snprintf(ret_why, 256,
			 "the metadata of version %" PRIu64
			 " names version %" PRIu64 " or lacks manifest_sha256",
			 version, img.version);
		return -EBADMSG;
	}
	*ret = img;
	return 0;
}

int remote_list_images(struct fetch *f, struct remote_entry **ret,
		       size_t *ret_n, char *ret_why)
{
	_cleanup_free_ struct remote_entry *list = NULL;
	json_t *root, *arr, *o;
	size_t i, n;
	int r;

	r = get_json(f, VMF_PATH_IMAGES, "the image list", &root, ret_why);
	if (r < 0)
		return r;
	arr = json_object_get(root, "images");
	n = json_array_size(arr);
	list = calloc(n + 1, sizeof(*list));
	r = json_is_array(arr) ? 0 : -EBADMSG;
	if (r == 0 && !list)
		r = -ENOMEM;
	json_array_foreach(arr, i, o)
	{
		const char *name =
		    json_string_value(json_object_get(o, "name"));

		if (r < 0)
			break;
		if (!name || strlen(name) > VMF_NAME_MAX ||
		    parse_sizes(o, &list[i].img) < 0) {
			r = -EBADMSG;
			break;
		}
		snprintf(list[i].name, sizeof(list[i].name), "%s", name);
	}
	json_decref(root);
	if (r == -EBADMSG)
		snprintf(ret_why, 256, "the image list is malformed");
	if (r < 0)
		return r;
	*ret = steal_ptr(&list);
	*ret_n = n;
	return 0;
}

int remote_get_manifest_header(struct fetch *f, const char *name,
			       const struct remote_image *img,
			       struct manifest_header *ret, char *ret_why)
{
	uint8_t buf[MANIFEST_HEADER_SIZE];
	struct manifest_header h;
	struct fetch_req req = {0};
	char path[256];
	int r;

	remote_manifest_path(name, img->version, path, sizeof(path));
	r = get_into(f, path, 0, sizeof(buf), buf, sizeof(buf), &req, ret_why);
	if (r < 0)
		return r;
	if (manifest_header_parse(buf, sizeof(buf), &h) < 0) {
		snprintf(ret_why, 256, "the manifest does not parse");
		return -EBADMSG;
	}
	if (h.image_size != img->size || h.block_size != img->block_size ||
	    h.version != img->version) {
		snprintf(ret_why, 256,
			 "the manifest (size %" PRIu64 ", block size %" PRIu32
			 ", version %" PRIu64
			 ") does not match the image (size %" PRIu64
			 ", block size %" PRIu32 ", version %" PRIu64 ")",
			 h.image_size, h.block_size, h.version, img->size,
			 img->block_size, img->version);
		return -EBADMSG;
	}
	if (img->manifest_size &&
	    img->manifest_size != manifest_encoded_size(&h)) {
		snprintf(ret_why, 256,
			 "the manifest's length does not match "
			 "its header");
		return -EBADMSG;
	}
	*ret = h;
	return 0;
}

int remote_get_manifest(struct fetch *f, const char *name,
			const struct remote_image *img,
			const struct manifest_header *hdr, uint8_t **ret,
			size_t *ret_len, char *ret_why)
{
	size_t len = (size_t)manifest_encoded_size(hdr);
	_cleanup_free_ uint8_t *man = NULL;
	char want[VMF_HASH_HEX_LEN + 1], got[VMF_HASH_HEX_LEN + 1];
	uint8_t sum[VMF_HASH_LEN];
	struct manifest_header h;
	struct fetch_req req = {0};
	char path[256];
	int r;

	if (!img->has_manifest_sha256) {
		snprintf(ret_why, 256,
			 "the image metadata has no manifest_sha256 to check "
			 "the manifest against");
		return -EBADMSG;
	}
	man = malloc(len);
	if (!man)
		return -ENOMEM;
	remote_manifest_path(name, img->version, path, sizeof(path));
	r = get_into(f, path, 0, len, man, len, &req, ret_why);
	if (r < 0)
		return r;
	hash_sha256(man, req.got, sum);
	if (req.got != len ||
	    memcmp(sum, img->manifest_sha256, VMF_HASH_LEN) != 0) {
		hash_to_hex(img->manifest_sha256, VMF_HASH_LEN, want);
		hash_to_hex(sum, VMF_HASH_LEN, got);
		snprintf(ret_why, 256,
			 "its SHA-256 is %.16s..., not the manifest_sha256 "
			 "%.16s... the server gives for it: refused (altered "
			 "on the way, e.g. by a proxy or cache)",
			 got, want);
		return -EBADMSG;
	}
	if (manifest_header_parse(man, len, &h) < 0 ||
	    h.image_size != hdr->image_size ||
	    h.block_size != hdr->block_size || h.nblocks != hdr->nblocks ||
	    h.version != hdr->version) {
		snprintf(ret_why, 256,
			 "its header does not match the one read before");
		return -EBADMSG;
	}
	*ret = steal_ptr(&man);
	*ret_len = len;
	return 0;
}

/* The profile route of version of name, into buf (room for len). */
static void profile_path(const char *name, uint64_t version, char *buf,
			 size_t len)
{
	snprintf(buf, len,
		 VMF_PATH_IMAGES "/%s/" VMF_SEG_VERSIONS "/%" PRIu64
				 "/" VMF_SEG_PROFILE,
		 name, version);
}

int remote_put_profile(struct fetch *f, const char *name, uint64_t version,
		       const uint64_t *blocks, size_t n, uint64_t deadline_ns,
		       char *ret_why)
{
	_cleanup_(json_decrefp) json_t *body = NULL;
	_cleanup_free_ char *text = NULL;
	struct fetch_req req = {0};
	json_t *list = json_array();
	char path[256];
	int r;

	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(
			list, json_integer((json_int_t)blocks[i])) < 0) {
			json_decref(list);
			return -ENOMEM;
		}
	body = json_pack("{s:I, s:o}", "version", (json_int_t)version, "blocks",
			 list);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!text)
		return -ENOMEM;
	profile_path(name, version, path, sizeof(path));
	req.path = path;
	req.method = "PUT";
	req.body = text;
	req.body_len = strlen(text);
	req.content_type = "application/json";
	/* Not background: that is paced by --max-rate, and a hydration
	 * that ran the bucket dry held an upload at unmount for tens of
	 * seconds (065 at 16K/s). */
	req.prio = FETCH_PRIO_PREFETCH;
	req.deadline_ns = deadline_ns;
	r = fetch_run(f, &req);
	if (r < 0)
		snprintf(ret_why, 256, "%s", req.errmsg);
	return r;
}

/* The entries of a profile answer's "blocks" below nblocks, as a new
 * array; -EBADMSG if one is not a non-negative integer. */
static int profile_blocks(json_t *list, uint64_t nblocks, uint64_t **ret,
			  size_t *ret_n)
{
	_cleanup_free_ uint64_t *out = NULL;
	size_t n = 0, i;
	json_t *item;

	if (json_array_size(list) > VMF_PROFILE_MAX_BLOCKS)
		return -EBADMSG;
	out = calloc(json_array_size(list) + 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	json_array_foreach(list, i, item)
	{
		if (!json_is_integer(item) || json_integer_value(item) < 0)
			return -EBADMSG;
		if ((uint64_t)json_integer_value(item) < nblocks)
			out[n++] = (uint64_t)json_integer_value(item);
	}
	*ret = n ? steal_ptr(&out) : NULL;
	*ret_n = n;
	return 0;
}

int remote_get_profile(struct fetch *f, const char *name, uint64_t version,
		       uint32_t block_size, uint64_t nblocks, uint64_t **ret,
		       size_t *ret_n, uint64_t *ret_from, char *ret_why)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	uint64_t from = 0, bs = 0;
	json_t *list;
	char path[256];
	int r;

	profile_path(name, version, path, sizeof(path));
	r = get_json(f, path, "the profile", &root, ret_why);
	if (r < 0)
		return r;
	list = json_object_get(root, "blocks");
	if (json_u64(root, "version", &from) < 0 || from > version ||
	    json_u64(root, "block_size", &bs) < 0 || !json_is_array(list)) {
		snprintf(ret_why, 256, "the profile is not the JSON expected");
		return -EBADMSG;
	}
	if (bs != block_size) {
		snprintf(ret_why, 256,
			 "the profile of version %" PRIu64
			 " has another block size",
			 from);
		*ret = NULL;
		*ret_n = 0;
		*ret_from = from;
		return 0;
	}
	r = profile_blocks(list, nblocks, ret, ret_n);
	if (r == -EBADMSG)
		snprintf(ret_why, 256, "the profile lists a bad block index");
	if (r == 0)
		*ret_from = from;
	return r;
}

int remote_read_token(const char *file, char **ret)
{
	_cleanup_free_ char *tok = NULL;
	const char *env = getenv("VMFERRY_TOKEN");
	int r;

	if (file) {
		r = read_file(file, VMF_TOKEN_MAX + 2, &tok, NULL);
		if (r < 0)
			return r == -EFBIG ? -EINVAL : r;
		strip_trailing_space(tok);
	} else if (env && *env) {
		tok = strdup(env);
		if (!tok)
			return -ENOMEM;
	} else {
		return -ENOKEY;
	}
	if (!*tok || strlen(tok) > VMF_TOKEN_MAX || strpbrk(tok, " \t\r\n")) {
		/* Refused, but still a secret (or most of one). */
		OPENSSL_cleanse(tok, strlen(tok));
		return -EINVAL;
	}
	*ret = steal_ptr(&tok);
	return 0;
}

void remote_warn_insecure(void)
{
	fprintf(stderr, "vmferry: WARNING: --insecure: TLS verification is "
			"OFF: the server's identity is NOT verified; anyone on "
			"the path can serve you a different disk and read "
			"your token\n");
}

const char *remote_strerror(int r)
{
	switch (r) {
	case -ECONNREFUSED:
		return "cannot connect to the server (connection refused)";
	case -EHOSTUNREACH:
		return "cannot reach the server (host not found)";
	case -ETIMEDOUT:
		return "the server did not answer in time";
	case -EPERM:
		return "the server's certificate does not verify (trust it with "
		       "--cacert FILE, or use --insecure)";
	case -EACCES:
		return "the server refused the token";
	case -ENOENT:
		return "no such image on the server";
	case -EBADMSG:
		return "the server's answer is malformed";
	case -EPROTONOSUPPORT:
		return "protocol not allowed";
	default:
		return "request failed";
	}
}
