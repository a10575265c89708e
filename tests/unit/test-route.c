/* SPDX-License-Identifier: MIT */
/* Unit tests for server/route.c and server/upload_parse.c: the answer
 * to each kind of request line, and to each kind of request body.  The
 * fuzz targets (tests/fuzz/fuzz-router.c, fuzz-upload.c) check the same
 * modules against models; this file pins the answers themselves. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "manifest.h"

#include "route.h"
#include "tap.h"
#include "upload_parse.h"

static const char hex64[] =
    "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

/* Expect url to route to route with name and version. */
static void ok(const char *method, const char *url, enum route_id route,
	       const char *name, uint64_t version)
{
	struct route_match m;

	check_int(route_parse(method, url, &m), ==, 0);
	check_int(m.route, ==, route);
	check(strcmp(m.name, name) == 0);
	check_uint(m.version, ==, version);
	check(m.error == NULL);
}

static void bad(const char *method, const char *url, int status,
		const char *error)
{
	struct route_match m;

	check_int(route_parse(method, url, &m), ==, status);
	check(m.error != NULL);
	if (error)
		check(strcmp(m.error, error) == 0);
	check(m.name[0] == '\0');
}

static void test_routes(void)
{
	struct route_match m;
	char url[128];

	ok("GET", "/v1/images", ROUTE_IMAGES, "", 0);
	ok("HEAD", "/v1/images/web-01.img_x", ROUTE_IMAGE, "web-01.img_x", 0);
	ok("GET", "/v1/images/demo/versions", ROUTE_HISTORY, "demo", 0);
	ok("HEAD", "/v1/images/demo/versions", ROUTE_HISTORY, "demo", 0);
	ok("POST", "/v1/images/demo/versions", ROUTE_COMMIT, "demo", 0);
	ok("POST", "/v1/images/demo/lease", ROUTE_LEASE, "demo", 0);
	ok("DELETE", "/v1/images/demo/pins", ROUTE_PINS, "demo", 0);
	ok("GET", "/v1/images/demo/access", ROUTE_ACCESS, "demo", 0);
	ok("HEAD", "/v1/images/%64emo/access", ROUTE_ACCESS, "demo", 0);
	ok("GET", "/v1/images/demo/versions/7", ROUTE_VERSION, "demo", 7);
	ok("HEAD", "/v1/images/%64emo/versions/%31", ROUTE_VERSION, "demo", 1);
	ok("GET", "/v1/images/demo/versions/7/manifest", ROUTE_MANIFEST, "demo",
	   7);
	ok("GET", "/v1/images/demo/versions/18446744073709551615/data",
	   ROUTE_DATA, "demo", UINT64_MAX);
	ok("PUT", "/v1/images/demo/versions/3/profile", ROUTE_PROFILE, "demo",
	   3);
	ok("GET", "/v1/images/demo/versions/3/profile", ROUTE_PROFILE, "demo",
	   3);
	ok("GET", "/v1/images/%64emo/versions/%31/data", ROUTE_DATA, "demo", 1);
	ok("POST", "/v1/blocks/missing", ROUTE_MISSING, "", 0);
	ok("GET", "/v1/stats", ROUTE_STATS, "", 0);
	snprintf(url, sizeof(url), "/v1/blocks/%s", hex64);
	check_int(route_parse("PUT", url, &m), ==, 0);
	check_int(m.route, ==, ROUTE_BLOCK);
	check_uint(m.hash[0], ==, 0x00);
	check_uint(m.hash[15], ==, 0xff);
	check_uint(m.hash[31], ==, 0xff);
}

static void test_not_found(void)
{
	bad("GET", "", 404, "no such route");
	bad("GET", "v1/images", 404, NULL);
	bad("GET", "/", 404, NULL);
	bad("GET", "/v2/images", 404, NULL);
	bad("GET", "/v1/nothing", 404, NULL);
	bad("GET", "/v1/images/demo/", 404, NULL);
	bad("GET", "/v1/images/de/mo/versions/1/data", 404, NULL);
	bad("GET", "/v1/images/a/versions/1/data/x/y/z/w", 404, NULL);
	bad("GET", "/v1/images?x=1", 404, NULL);
	bad("DELETE", "/v1/stat", 404, NULL); /* before the method */
}

static void test_method(void)
{
	struct route_match m;

	check_int(route_parse("DELETE", "/v1/images/demo", &m), ==, 405);
	check_int(m.route, ==, ROUTE_IMAGE);
	check(strcmp(route_methods(m.route), "GET, HEAD") == 0);
	/* Before the parameters: a bad name with a bad method is a 405. */
	bad("PUT", "/v1/images/../versions", 405, NULL);
	bad("GET", "/v1/blocks/xyz", 405, NULL);
	bad("POST", "/v1/images/demo/versions/3/profile", 405, NULL);
	bad("POST", "/v1/images/demo/versions/3", 405, NULL);
	bad("GET", "/v1/images/demo/lease/3", 404, NULL);
	bad("DELETE", "/v1/images/demo/access", 405, NULL);
	bad("GET", "/v1/images/demo/access/x", 404, NULL);
	bad("get", "/v1/images", 405, NULL);
	bad("GE", "/v1/images", 405, NULL);
	bad("GET, HEAD", "/v1/images", 405, NULL);
	/* Regression: the old strstr() check read past the list here. */
	bad("", "/v1/images", 405, NULL);
	bad("", "/v1/blocks/missing", 405, NULL);
	check(route_method_allowed(ROUTE_COMMIT, "POST"));
	check(route_method_allowed(ROUTE_HISTORY, "HEAD"));
	check(!route_method_allowed(ROUTE_LEASE, "POS"));
	check(!route_method_allowed(ROUTE_LEASE, "ST"));
}

static void test_params(void)
{
	const char *names[] = {"..",	    "%2e%2e", "..%2F..%2Fetc", "a%2Fb",
			       ".hidden",   "a%00b",  "a%zz",	       "a%4",
			       "caf%C3%A9", ""};
	char url[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(url, sizeof(url), "/v1/images/%s/versions/1/data",
			 names[i]);
		bad("GET", url, 400, "invalid image name");
	}
	bad("GET",
	    "/v1/images/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxx",
	    400, "invalid image name");			      /* 65 */
	ok("GET", "/v1/images/a..b", ROUTE_IMAGE, "a..b", 0); /* no '/' */
}

static void test_versions(void)
{
	const char *bad_versions[] = {"01",
				      "-1",
				      "+1",
				      "1a",
				      "%201",
				      "%30%31",
				      "",
				      "18446744073709551616",
				      "99999999999999999999999"};
	char url[128];

	ok("GET", "/v1/images/demo/versions/0/data", ROUTE_DATA, "demo", 0);
	for (size_t i = 0; i < sizeof(bad_versions) / sizeof(bad_versions[0]);
	     i++) {
		snprintf(url, sizeof(url), "/v1/images/demo/versions/%s/data",
			 bad_versions[i]);
		bad("GET", url, 400, "invalid version number");
		snprintf(url, sizeof(url), "/v1/images/demo/versions/%s",
			 bad_versions[i]);
		bad("GET", url, 400, "invalid version number");
	}
}

static void test_hash(void)
{
	char url[128];

	bad("PUT", "/v1/blocks/xyz", 400,
	    "invalid block hash (want 64 hex digits)");
	snprintf(url, sizeof(url), "/v1/blocks/%.63s", hex64);
	bad("PUT", url, 400, NULL);
	snprintf(url, sizeof(url), "/v1/blocks/%sa", hex64);
	bad("PUT", url, 400, NULL);
	snprintf(url, sizeof(url), "/v1/blocks/%%30%s", hex64 + 3);
	bad("PUT", url, 400, NULL); /* not decoded */
}

/* A manifest of nblocks 4 KiB blocks (hashes left zero). */
static void manifest_bytes(uint64_t nblocks, uint8_t *out)
{
	struct manifest_header h = {.block_size = 4096,
				    .image_size = nblocks * 4096,
				    .nblocks = nblocks};

	manifest_header_encode(&h, out);
	memset(out + MANIFEST_HEADER_SIZE, 0, nblocks * VMF_HASH_LEN);
}

static void test_upload_missing(void)
{
	uint8_t buf[100] = {0};
	struct upload_parse u;

	upload_parse_init(&u, ROUTE_MISSING, 64);
	check_int(upload_parse_length(&u, NULL), ==, 0);
	check_int(upload_parse_length(&u, "64"), ==, 0);
	check_int(upload_parse_length(&u, "96"), ==, -EFBIG);
	check_int(upload_parse_length(&u, "33"), ==, -EBADMSG);
	check_int(upload_parse_length(&u, "1x"), ==, -EINVAL);
	check_int(upload_parse_length(&u, " 1"), ==, -EINVAL);
	check_int(upload_parse_length(&u, ""), ==, -EINVAL);
	check_int(upload_parse_length(&u, "18446744073709551616"), ==, -EINVAL);
	check_int(upload_parse_add(&u, buf, 40), ==, 0);
	check_int(upload_parse_finish(&u), ==, -EBADMSG);
	check_int(upload_parse_add(&u, buf, 24), ==, 0);
	check_int(upload_parse_finish(&u), ==, 0);
	check_int(upload_parse_add(&u, buf, 1), ==, -EFBIG);
	check_int(upload_parse_add(&u, buf, 0), ==, -EFBIG); /* it stays */
	check_int(upload_parse_finish(&u), ==, -EFBIG);
	check_uint(u.len, ==, 64);
}

static void test_upload_commit(void)
{
	uint8_t m[MANIFEST_HEADER_SIZE + 3 * VMF_HASH_LEN + 1];
	size_t len = sizeof(m) - 1;
	struct upload_parse u;

	manifest_bytes(3, m);
	/* Byte by byte across the header, then the rest. */
	upload_parse_init(&u, ROUTE_COMMIT, UINT64_MAX);
	for (size_t i = 0; i < MANIFEST_HEADER_SIZE; i++)
		check_int(upload_parse_add(&u, m + i, 1), ==, 0);
	check_uint(u.expect, ==, len);
	check_int(upload_parse_finish(&u), ==, -EBADMSG); /* short */
	check_int(upload_parse_add(&u, m + 64, len - 64), ==, 0);
	check_int(upload_parse_finish(&u), ==, 0);
	check_int(upload_parse_add(&u, m, 1), ==, -EMSGSIZE);

	/* One byte too many in the chunk that completes the header. */
	upload_parse_init(&u, ROUTE_COMMIT, UINT64_MAX);
	check_int(upload_parse_add(&u, m, len + 1), ==, -EMSGSIZE);
	check_uint(u.len, ==, 0);
	check_uint(u.expect, ==, len); /* for the error message */

	/* A header that does not parse. */
	m[0] = 'X';
	upload_parse_init(&u, ROUTE_COMMIT, UINT64_MAX);
	check_int(upload_parse_add(&u, m, 63), ==, 0);
	check_int(upload_parse_add(&u, m + 63, 1), ==, -EBADMSG);
	check_int(upload_parse_finish(&u), ==, -EBADMSG);
}

int main(void)
{
	TEST(test_routes(), "every route, with its parameters");
	TEST(test_not_found(), "no such route: 404, whatever the method");
	TEST(test_method(), "wrong method: 405, before the parameters");
	TEST(test_params(), "names that must not reach the disk: 400");
	TEST(test_versions(), "one spelling per version, others 400");
	TEST(test_hash(), "block hashes: exactly 64 hex digits");
	TEST(test_upload_missing(), "hash lists: limits and length");
	TEST(test_upload_commit(), "a commit is as long as its header says");
	return test_done();
}
