/* SPDX-License-Identifier: MIT */
/* Unit tests for fusefs/image.c: the read path over a real cache (LMDB in
 * a temporary directory) and a mock of its other neighbour, the fetch
 * engine, which serves a version's manifest and data from memory, counts
 * requests and can corrupt a block or fail. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "io.h"
#include "manifest.h"

#include "cache.h"
#include "fetch.h"
#include "image.h"
#include "tap.h"

#define BS   4096u
#define NBLK 40u
#define SIZE (NBLK * BS - 1000) /* not a multiple of the block size */

/* The mock server: one version's bytes and manifest. */
static uint8_t data[NBLK * BS];
static uint8_t *manifest;
static size_t manifest_len;
static atomic_int data_requests;
static atomic_int zero_block_requests;
static int corrupt_block = -1; /* served with one byte flipped */
static bool fail_all;	       /* every request fails */

/* ---- mock of fetch.h (only what image.c calls) ---- */

static void serve(struct fetch_req *req)
{
	bool is_data = strstr(req->path, "/data") != NULL;
	const uint8_t *src = is_data ? data : manifest;
	uint64_t total = is_data ? SIZE : manifest_len;

	if (fail_all || req->len == 0 || req->off + req->len > total) {
		req->result = -EIO;
		snprintf(req->errmsg, sizeof(req->errmsg), "mock failure");
		return;
	}
	memcpy(req->buf, src + req->off, req->len);
	if (is_data) {
		atomic_fetch_add(&data_requests, 1);
		for (uint64_t b = req->off / BS; b * BS < req->off + req->len;
		     b++) {
			if (hash_is_zero_buf(data + b * BS, BS))
				atomic_fetch_add(&zero_block_requests, 1);
			if ((int)b == corrupt_block)
				((uint8_t *)req->buf)[b * BS - req->off + 7] ^=
				    1;
		}
	}
	req->got = req->len;
	req->result = 0;
}

int fetch_run(struct fetch *f, struct fetch_req *req)
{
	(void)f;
	serve(req);
	return req->result;
}

void fetch_submit(struct fetch *f, struct fetch_req *req)
{
	(void)f;
	serve(req);
	req->done(req);
}

/* ---- fixture ---- */

static char dir[] = "/tmp/vmferry-test-image.XXXXXX";
static uint8_t key[CRYPTO_KEY_LEN] = {1, 2, 3};
static uint8_t id[CRYPTO_CACHE_ID_LEN] = {9};

/* Blocks 3-5 and 20 are zero; the rest random-ish. */
static void make_version(uint64_t version, uint8_t salt)
{
	struct manifest m = {.hdr = {.block_size = BS, .image_size = SIZE}};
	uint8_t *buf;
	size_t len;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 31 + i / 977 + salt);
	memset(data + 3 * BS, 0, 3 * BS);
	memset(data + 20 * BS, 0, BS);
	memset(data + SIZE, 0, sizeof(data) - SIZE);
	m.hdr.nblocks = manifest_nblocks(SIZE, BS);
	m.hdr.version = version;
	m.hashes = calloc(m.hdr.nblocks, VMF_HASH_LEN);
	for (uint64_t b = 0; b < m.hdr.nblocks; b++) {
		uint32_t blen = manifest_block_len(&m.hdr, b);

		if (!hash_is_zero_buf(data + b * BS, blen))
			hash_sha256(data + b * BS, blen,
				    m.hashes + b * VMF_HASH_LEN);
	}
	assert(manifest_encode(&m, &buf, &len) == 0);
	free(manifest);
	manifest = buf;
	manifest_len = len;
	manifest_fini(&m);
}

static struct image *open_image(struct cache **ret_c, uint32_t readahead,
				uint64_t prev_version)
{
	struct image_config cfg = {
	    .name = "t",
	    .data_path = "/v1/images/t/versions/1/data",
	    .manifest_path = "/v1/images/t/versions/1/manifest",
	    .io_timeout_s = 1,
	    .readahead_blocks = readahead,
	    .prev_version = prev_version,
	};
	struct image *im = NULL;

	assert(manifest_header_parse(manifest, manifest_len, &cfg.hdr) == 0);
	assert(cache_open(dir, key, id, 64 << 20, ret_c) == 0);
	check_int(image_new(&cfg, (struct fetch *)1, *ret_c, &im), ==, 0);
	check_int(image_load_manifest(im, 0, 1), ==, 0);
	return im;
}

static void close_image(struct image *im, struct cache *c)
{
	image_free(im); /* drains the writer: everything queued is stored */
	cache_free(c);
}

/* ---- tests ---- */

static void test_read_all(void)
{
	struct cache *c;
	struct image *im = open_image(&c, 0, 0);
	static uint8_t out[NBLK * BS];

	atomic_store(&data_requests, 0);
	atomic_store(&zero_block_requests, 0);
	check_int(image_read(im, out, sizeof(out), 0), ==, SIZE);
	check_mem(out, data, SIZE);
	check_int(atomic_load(&zero_block_requests), ==, 0);
	/* Runs between zero blocks are coalesced: 0-2, 6-19, 21-39. */
	check_int(atomic_load(&data_requests), ==, 3);
	/* Past the end: nothing; across the end: the tail only. */
	check_int(image_read(im, out, 100, SIZE), ==, 0);
	check_int(image_read(im, out, 5000, SIZE - 10), ==, 10);
	check_mem(out, data + SIZE - 10, 10);
	close_image(im, c);
}

static void test_warm_makes_no_requests(void)
{
	struct cache *c;
	struct image *im = open_image(&c, 0, 0);
	static uint8_t out[NBLK * BS];

	atomic_store(&data_requests, 0);
	check_int(image_read(im, out, SIZE, 0), ==, SIZE);
	check_mem(out, data, SIZE);
	check_int(atomic_load(&data_requests), ==, 0);
	check(image_complete(im));
	close_image(im, c);
}

static void test_corrupt_block_is_eio(void)
{
	struct cache *c;
	struct image *im;
	uint8_t out[3 * BS];

	check_int(rm_rf(dir), ==, 0);
	check_int(mkdir_p(dir, 0700), ==, 0);
	im = open_image(&c, 0, 0);
	corrupt_block = 8;
	memset(out, 0xAA, sizeof(out));
	check_int(image_read(im, out, sizeof(out), 7 * BS), ==, -EIO);
	/* A neighbour outside the bad block still reads. */
	check_int(image_read(im, out, BS, 10 * BS), ==, BS);
	check_mem(out, data + 10 * BS, BS);
	corrupt_block = -1;
	/* Once the server is right again, the block reads correctly. */
	check_int(image_read(im, out, BS, 8 * BS), ==, BS);
	check_mem(out, data + 8 * BS, BS);
	close_image(im, c);
}

static void test_dead_server_is_eio_but_cache_serves(void)
{
	struct cache *c;
	struct image *im = open_image(&c, 0, 0);
	uint8_t out[BS];

	fail_all = true;
	check_int(image_read(im, out, BS, 8 * BS), ==, BS); /* cached */
	check_int(image_read(im, out, BS, 30 * BS), ==, -EIO);
	fail_all = false;
	close_image(im, c);
}

struct reader_arg {
	struct image *im;
	uint8_t out[8 * BS];
	ssize_t n;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;

	a->n = image_read(a->im, a->out, sizeof(a->out), 24 * BS);
	return NULL;
}

static void test_concurrent_readers_fetch_once(void)
{
	struct cache *c;
	struct image *im;
	struct reader_arg a[4];
	pthread_t t[4];

	check_int(rm_rf(dir), ==, 0);
	check_int(mkdir_p(dir, 0700), ==, 0);
	im = open_image(&c, 0, 0);
	atomic_store(&data_requests, 0);
	for (int i = 0; i < 4; i++) {
		a[i].im = im;
		pthread_create(&t[i], NULL, reader, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		check_int(a[i].n, ==, (ssize_t)sizeof(a[i].out));
		check_mem(a[i].out, data + 24 * BS, sizeof(a[i].out));
	}
	/* Each block of 24-31 was fetched by exactly one reader. */
	check_int(atomic_load(&data_requests), <=, 4);
	close_image(im, c);
}

static void test_new_version_fetches_only_changes(void)
{
	struct cache *c;
	struct image *im;
	static uint8_t out[NBLK * BS];
	uint8_t keep[BS];

	/* Fill the cache with version 1. */
	check_int(rm_rf(dir), ==, 0);
	check_int(mkdir_p(dir, 0700), ==, 0);
	make_version(1, 0);
	im = open_image(&c, 0, 0);
	check_int(image_read(im, out, SIZE, 0), ==, SIZE);
	close_image(im, c);

	/* Version 2 changes block 12 only. */
	memcpy(keep, data + 12 * BS, BS);
	make_version(2, 0);
	data[12 * BS] ^= 0xff;
	{
		struct manifest m;

		assert(manifest_parse(manifest, manifest_len, &m) == 0);
		hash_sha256(data + 12 * BS, BS, m.hashes + 12 * VMF_HASH_LEN);
		free(manifest);
		assert(manifest_encode(&m, &manifest, &manifest_len) == 0);
		manifest_fini(&m);
	}
	im = open_image(&c, 0, 1);
	atomic_store(&data_requests, 0);
	check_int(image_read(im, out, SIZE, 0), ==, SIZE);
	check_mem(out, data, SIZE);
	check(memcmp(out + 12 * BS, keep, BS) != 0);
	check_int(atomic_load(&data_requests), ==, 1);
	close_image(im, c);
}

/* Hydration fetches a block without claiming it; the guest writes it
 * meanwhile; then the fetched (stale) bytes arrive.  Reads must see the
 * write, before and after the writer stores what is queued. */
static void test_hydrated_after_write_is_ignored(void)
{
	struct cache *c;
	struct image *im;
	static uint8_t want[NBLK * BS], out[NBLK * BS];
	uint8_t w[100];

	check_int(rm_rf(dir), ==, 0);
	check_int(mkdir_p(dir, 0700), ==, 0);
	make_version(1, 0);
	memcpy(want, data, SIZE);
	im = open_image(&c, 0, 0);
	for (uint64_t b = 6; b < 19; b++) {
		memset(w, (int)(0xa0 + b), sizeof(w));
		check_int(image_write(im, w, sizeof(w), b * BS + 50), ==,
			  sizeof(w));
		memcpy(want + b * BS + 50, w, sizeof(w));
		/* Right away: the writer has most likely not stored the
		 * write yet, so a reader copies the newest queued job. */
		check_int(image_store_fetched(im, b, 1, data + b * BS), >=, 0);
		check_int(image_read(im, out, BS, b * BS), ==, BS);
		check_mem(out, want + b * BS, BS);
	}
	check_int(image_flush(im), ==, 0);
	close_image(im, c);
	im = open_image(&c, 0, 0);
	check_int(image_load_dirty(im), ==, 13);
	check_int(image_read(im, out, SIZE, 0), ==, SIZE);
	check_mem(out, want, SIZE);
	close_image(im, c);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	make_version(1, 0);
	TEST(test_read_all(), "cold read: exact bytes, zero blocks never "
			      "requested, adjacent misses coalesced");
	TEST(test_warm_makes_no_requests(), "warm read makes no request");
	TEST(test_corrupt_block_is_eio(), "a block failing its hash gives "
					  "EIO, never its bytes");
	TEST(test_dead_server_is_eio_but_cache_serves(),
	     "dead server: cached blocks read, others EIO after the timeout");
	TEST(test_concurrent_readers_fetch_once(),
	     "concurrent readers of the same blocks fetch them once");
	TEST(test_new_version_fetches_only_changes(),
	     "a new version refetches only changed blocks");
	TEST(test_hydrated_after_write_is_ignored(),
	     "bytes hydrated before a write never shadow it");
	rm_rf(dir);
	free(manifest);
	return test_done();
}
