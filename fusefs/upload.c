/* SPDX-License-Identifier: MIT */
/* Block upload and version commit.  See upload.h.
 *
 * PUT completions arrive on the fetch thread (on_put_done), which only
 * counts them under the upload's lock; the caller waits on its condvar.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "hash.h"
#include "log.h"
#include "mutex.h"

#include "crypto.h"
#include "fetch.h"
#include "remote.h"
#include "upload.h"

/* PUTs in flight at once. */
#define UPLOAD_INFLIGHT 8
/* Hashes per missing-blocks question. */
#define UPLOAD_BATCH 4096

struct puts {
	pthread_mutex_t lock; /* protects done, first_error, errmsg */
	pthread_cond_t cond;
	unsigned done;
	int first_error;
	char errmsg[256];
};

int upload_fetch_new(struct fetch_config *cfg, const char *base_url,
		     const char *token, struct fetch **ret)
{
	cfg->base_url = base_url;
	cfg->token = token;
	cfg->connect_timeout_s = 10;
	cfg->stall_timeout_s = 60; /* a commit may take a while to answer */
	cfg->max_inflight = UPLOAD_INFLIGHT + 1;
	cfg->max_background = 1;
	return fetch_new(cfg, ret);
}

static void on_put_done(struct fetch_req *req)
{
	struct puts *p = req->opaque;

	mutex_lock(&p->lock);
	if (req->result < 0 && !p->first_error) {
		p->first_error = req->result;
		snprintf(p->errmsg, sizeof(p->errmsg), "%s", req->errmsg);
	}
	p->done++;
	cond_signal(&p->cond);
	mutex_unlock(&p->lock);
}

/* One batch: ask, then PUT what is missing. */
static int upload_batch(struct fetch *f, const struct upload_block *blocks,
			size_t n, struct upload_stats *st, char *why)
{
	_cleanup_free_ uint8_t *want = malloc(n * VMF_HASH_LEN + 1);
	_cleanup_free_ uint8_t *missing = malloc(n * VMF_HASH_LEN + 1);
	_cleanup_free_ size_t *index = malloc(n * sizeof(size_t) + 1);
	_cleanup_free_ struct fetch_req *reqs = calloc(n + 1, sizeof(*reqs));
	_cleanup_free_ char *paths = malloc(n * 96 + 1);
	struct fetch_req q = {0};
	struct puts p = {.first_error = 0};
	size_t nwant = 0, nmissing, submitted = 0;
	int r;

	if (!want || !missing || !index || !reqs || !paths)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (hash_is_zero(blocks[i].hash))
			continue;
		memcpy(want + nwant * VMF_HASH_LEN, blocks[i].hash,
		       VMF_HASH_LEN);
		index[nwant++] = i;
	}
	if (nwant == 0)
		return 0;
	q.path = VMF_PATH_BLOCKS "/" VMF_SEG_MISSING;
	q.method = "POST";
	q.body = want;
	q.body_len = nwant * VMF_HASH_LEN;
	q.buf = missing;
	q.buf_len = nwant * VMF_HASH_LEN;
	r = fetch_run(f, &q);
	if (r < 0) {
		snprintf(why, 256, "asking for missing blocks: %.200s",
			 q.errmsg);
		return r;
	}
	if (q.got % VMF_HASH_LEN) {
		snprintf(why, 256, "malformed missing-blocks answer");
		return -EBADMSG;
	}
	nmissing = q.got / VMF_HASH_LEN;
	st->present += nwant - nmissing;
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	for (size_t m = 0; m < nmissing; m++) {
		const uint8_t *h = missing + m * VMF_HASH_LEN;
		char hex[VMF_HASH_HEX_LEN + 1];
		size_t k;

		for (k = 0; k < nwant; k++)
			if (memcmp(want + k * VMF_HASH_LEN, h, VMF_HASH_LEN) ==
			    0)
				break;
		if (k == nwant) {
			snprintf(why, 256,
				 "the server asked for a block we "
				 "did not offer");
			r = -EBADMSG;
			break;
		}
		hash_to_hex(h, VMF_HASH_LEN, hex);
		snprintf(paths + m * 96, 96, VMF_PATH_BLOCKS "/%s", hex);
		reqs[m].path = paths + m * 96;
		reqs[m].method = "PUT";
		reqs[m].body = blocks[index[k]].buf;
		reqs[m].body_len = blocks[index[k]].len;
		reqs[m].prio = FETCH_PRIO_DEMAND;
		reqs[m].done = on_put_done;
		reqs[m].opaque = &p;
		mutex_lock(&p.lock);
		while (submitted - p.done >= UPLOAD_INFLIGHT)
			cond_wait(&p.cond, &p.lock);
		mutex_unlock(&p.lock);
		fetch_submit(f, &reqs[m]);
		submitted++;
		st->bytes += reqs[m].body_len;
	}
	mutex_lock(&p.lock);
	while (p.done < submitted)
		cond_wait(&p.cond, &p.lock);
	mutex_unlock(&p.lock);
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.cond);
	if (r == 0 && p.first_error) {
		snprintf(why, 256, "uploading blocks: %.200s", p.errmsg);
		r = p.first_error;
	}
	if (r == 0)
		st->uploaded += nmissing;
	return r;
}

int upload_blocks(struct fetch *f, const struct upload_block *blocks, size_t n,
		  struct upload_stats *st, char *ret_why)
{
	for (size_t i = 0; i < n; i += UPLOAD_BATCH) {
		int r = upload_batch(
		    f, blocks + i, n - i < UPLOAD_BATCH ? n - i : UPLOAD_BATCH,
		    st, ret_why);

		if (r < 0)
			return r;
	}
	return 0;
}

int upload_commit(struct fetch *f, const char *name, uint64_t base,
		  const void *buf, size_t len, const char *lease_id,
		  const char *commit_id, uint64_t *ret_version, char *ret_why)
{
	uint8_t id[16];
	char idhex[33], hdrs[3][160], path[256], reply[4096];
	int r;

	if (commit_id) {
		snprintf(idhex, sizeof(idhex), "%s", commit_id);
	} else {
		r = crypto_random(id, sizeof(id));
		if (r < 0)
			return r;
		hash_to_hex(id, sizeof(id), idhex);
	}
	snprintf(hdrs[0], sizeof(hdrs[0]), VMF_HDR_COMMIT_ID ": %s", idhex);
	snprintf(hdrs[1], sizeof(hdrs[1]), VMF_HDR_BASE ": %" PRIu64, base);
	if (lease_id)
		snprintf(hdrs[2], sizeof(hdrs[2]), VMF_HDR_LEASE ": %s",
			 lease_id);
	snprintf(path, sizeof(path), VMF_PATH_IMAGES "/%s/" VMF_SEG_VERSIONS,
		 name);
	for (int attempt = 0;; attempt++) {
		struct fetch_req q = {0};
		json_t *o;

		q.path = path;
		q.method = "POST";
		q.body = buf;
		q.body_len = len;
		q.extra_headers[0] = hdrs[0];
		q.extra_headers[1] = hdrs[1];
		q.extra_headers[2] = lease_id ? hdrs[2] : NULL;
		q.buf = reply;
		q.buf_len = sizeof(reply) - 1;
		q.prio = FETCH_PRIO_DEMAND;
		r = fetch_run(f, &q);
		if (r == 0) {
			reply[q.got] = '\0';
			o = json_loads(reply, 0, NULL);
			/* A commit is always base + 1: anything else is a
			 * damaged answer, whatever happened on the server. */
			r = json_is_integer(json_object_get(o, "version")) &&
				    json_integer_value(json_object_get(
					o, "version")) == (json_int_t)base + 1
				? 0
				: -EBADMSG;
			if (r == 0)
				*ret_version = (uint64_t)json_integer_value(
				    json_object_get(o, "version"));
			else
				snprintf(ret_why, 256,
					 "malformed commit "
					 "answer");
			json_decref(o);
			return r;
		}
		snprintf(ret_why, 256, "%s", q.errmsg);
		if (q.http_status == 409)
			return -ESTALE;
		/* Only a lost answer is worth the same commit again. */
		if ((r != -ETIMEDOUT && r != -EIO && r != -ECONNREFUSED) ||
		    attempt == 3)
			return r;
		sleep(1u << attempt);
	}
}
