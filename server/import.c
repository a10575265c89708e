/* SPDX-License-Identifier: MIT */
/* Streaming import of a raw image.
 *
 * Owns, for one call, IMPORT_WORKERS threads with one block buffer each
 * and the temporary manifest in DIR/tmp.  The calling thread reads the
 * file in order into an idle worker's buffer; the worker hashes the
 * block, stores it if new and writes its manifest entry in place
 * (pwrite at the entry's offset).  Storing a block waits for an fsync;
 * several in flight let the file system commit them together, which is
 * most of the speed.  Directory fsyncs are batched: each worker notes
 * the blocks/XX directories it touched, and all are synced once before
 * the commit.  Memory: IMPORT_WORKERS blocks, whatever the image size.
 *
 * Lock: c->lock protects every worker's busy flag, c->stop and c->error;
 * a worker's buffer belongs to the reader while idle and to the worker
 * while busy.  Counters and dirty marks are per worker and read after
 * the join.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "manifest.h"
#include "progress.h"
#include "util.h"

#include "commit.h"
#include "import.h"
#include "mutex.h"
#include "store.h"
#include "versions.h"

#define IMPORT_WORKERS 8

struct import_ctx;

struct worker {
	struct import_ctx *c;
	pthread_t thread;
	uint8_t *buf; /* one block */
	size_t len;
	uint64_t blkno;
	bool busy; /* protected by c->lock */
	/* Results, read after the join. */
	uint64_t new_blocks, zero_blocks, present_blocks;
	bool dirty[256]; /* blocks/XX directories written */
};

struct import_ctx {
	struct store *store;
	int mfd;	      /* temporary manifest; pwrite from any thread */
	pthread_mutex_t lock; /* protects busy flags, stop, error */
	pthread_cond_t cond;  /* any of those changed */
	bool stop;
	int error; /* the first error of any worker */
	struct worker w[IMPORT_WORKERS];
};

/* Hash one block, store it if new, write its manifest entry. */
static int import_block(struct worker *w)
{
	struct import_ctx *c = w->c;
	uint8_t h[VMF_HASH_LEN];
	bool created;
	int r;

	if (hash_is_zero_buf(w->buf, w->len)) {
		memset(h, 0, VMF_HASH_LEN);
		w->zero_blocks++;
	} else {
		hash_sha256(w->buf, w->len, h);
		r = store_put(c->store, h, w->buf, w->len,
			      STORE_PUT_NO_DIR_SYNC, &created);
		if (r < 0)
			return r;
		if (created) {
			w->new_blocks++;
			w->dirty[h[0]] = true;
		} else {
			w->present_blocks++;
		}
	}
	return full_pwrite(c->mfd, h, VMF_HASH_LEN,
			   (off_t)manifest_entry_offset(w->blkno));
}

static void *worker_main(void *opaque)
{
	struct worker *w = opaque;
	struct import_ctx *c = w->c;
	int r;

	mutex_lock(&c->lock);
	for (;;) {
		while (!w->busy && !c->stop)
			cond_wait(&c->cond, &c->lock);
		if (!w->busy)
			break;
		mutex_unlock(&c->lock);
		r = import_block(w);
		mutex_lock(&c->lock);
		if (r < 0 && !c->error)
			c->error = r;
		w->busy = false;
		cond_broadcast(&c->cond);
	}
	mutex_unlock(&c->lock);
	return NULL;
}

/* Wait for an idle worker; NULL once a worker has failed. */
static struct worker *idle_worker(struct import_ctx *c)
{
	struct worker *found = NULL;

	mutex_lock(&c->lock);
	while (!found && !c->error) {
		for (unsigned i = 0; i < IMPORT_WORKERS && !found; i++)
			if (!c->w[i].busy)
				found = &c->w[i];
		if (!found)
			cond_wait(&c->cond, &c->lock);
	}
	mutex_unlock(&c->lock);
	return found;
}

/* Read the file in order and hand each block to a worker. */
static int feed(struct import_ctx *c, int fd, uint64_t size, uint32_t bs,
		struct progress *p)
{
	uint64_t done = 0, nblocks = manifest_nblocks(size, bs);

	for (uint64_t i = 0; i < nblocks; i++) {
		struct worker *w = idle_worker(c);
		size_t want = size - done < bs ? (size_t)(size - done) : bs;
		ssize_t n;

		if (!w)
			return 0; /* c->error says why */
		n = read_up_to(fd, w->buf, want);
		if (n < 0)
			return (int)n;
		if ((size_t)n != want)
			return -EIO; /* the file shrank under us */
		mutex_lock(&c->lock);
		w->len = want;
		w->blkno = i;
		w->busy = true;
		cond_broadcast(&c->cond);
		mutex_unlock(&c->lock);
		done += want;
		progress_update(p, done);
	}
	return 0;
}

/* Start the workers, feed them, stop them; sums up into res. */
static int run_workers(struct import_ctx *c, int fd, uint32_t bs,
		       struct import_result *res, struct progress *p)
{
	unsigned started = 0;
	bool dirty[256] = {false};
	int r = 0;

	for (; started < IMPORT_WORKERS; started++) {
		struct worker *w = &c->w[started];

		w->c = c;
		w->buf = malloc(bs);
		if (!w->buf ||
		    pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			free(w->buf);
			r = -ENOMEM;
			break;
		}
	}
	if (r == 0)
		r = feed(c, fd, res->size, bs, p);
	mutex_lock(&c->lock);
	c->stop = true; /* workers finish their block, then leave */
	cond_broadcast(&c->cond);
	mutex_unlock(&c->lock);
	for (unsigned i = 0; i < started; i++) {
		struct worker *w = &c->w[i];

		if (pthread_join(w->thread, NULL) != 0)
			abort();
		free(w->buf);
		res->new_blocks += w->new_blocks;
		res->zero_blocks += w->zero_blocks;
		res->present_blocks += w->present_blocks;
		for (unsigned d = 0; d < 256; d++)
			dirty[d] |= w->dirty[d];
	}
	if (r == 0)
		r = c->error;
	/* Every new block durable before the manifest may name it. */
	for (unsigned d = 0; r == 0 && d < 256; d++)
		if (dirty[d])
			r = store_sync_dir(c->store, (uint8_t)d);
	return r;
}

static int file_size(int fd, uint64_t *ret)
{
	off_t end = lseek(fd, 0, SEEK_END);

	if (end < 0)
		return -errno;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	*ret = (uint64_t)end;
	return 0;
}

static int write_header(int mfd, uint64_t size, uint32_t bs)
{
	struct manifest_header h = {
	    .block_size = bs,
	    .image_size = size,
	    .nblocks = manifest_nblocks(size, bs),
	};
	uint8_t hdr[MANIFEST_HEADER_SIZE];

	if (manifest_header_check(&h) < 0)
		return -EINVAL;
	manifest_header_encode(&h, hdr);
	return full_pwrite(mfd, hdr, sizeof(hdr), 0);
}

/* Is the manifest in mfd (version 0, for nblocks blocks) the same as
 * version base's, byte for byte but the version field? */
static bool same_as_base(struct versions *v, const char *name, uint64_t base,
			 int mfd, uint64_t nblocks)
{
	uint8_t a[VMF_HASH_LEN], b[VMF_HASH_LEN];
	struct version_info vi;
	_cleanup_close_ int fd = -1;
	uint64_t size = MANIFEST_HEADER_SIZE + nblocks * VMF_HASH_LEN;

	fd = versions_open_manifest(v, name, base, false, &vi);
	/* Cannot tell: commit, as if it changed. */
	if (fd < 0 || vi.manifest_size != size ||
	    versions_digest(fd, size, true, a) < 0 ||
	    versions_digest(mfd, size, true, b) < 0)
		return false;
	return memcmp(a, b, sizeof(a)) == 0;
}

static int do_import(struct store *s, struct versions *v, const char *name,
		     const char *path, uint32_t block_size, bool show_progress,
		     const struct import_commit *how, struct import_result *ret)
{
	struct import_ctx c = {.store = s, .mfd = -1};
	struct import_result res = {0};
	struct commit_request req = {
	    .name = name,
	    .base = how->base,
	    .check_lease = how->check_lease,
	    .lease_id = how->lease_id,
	    .author = how->author,
	    .keep_versions = how->keep_versions,
	};
	struct commit_result cr = {0};
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	struct progress p;
	int r;

	if (!image_name_valid(name) || block_size < VMF_BLOCK_SIZE_MIN ||
	    block_size > VMF_BLOCK_SIZE_MAX || (block_size & (block_size - 1)))
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = file_size(fd, &res.size);
	if (r < 0)
		return r;
	if (res.size > VMF_IMAGE_SIZE_MAX)
		return -EFBIG;
	/* Advice only; a failure changes nothing but speed. */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	res.nblocks = manifest_nblocks(res.size, block_size);
	c.mfd = store_mktemp(s, "import", &tmp);
	if (c.mfd < 0)
		return c.mfd;
	if (pthread_mutex_init(&c.lock, NULL) != 0 ||
	    pthread_cond_init(&c.cond, NULL) != 0)
		abort();
	progress_init(&p, name, res.size);
	p.tty = p.tty && show_progress;
	r = write_header(c.mfd, res.size, block_size);
	if (r == 0)
		r = run_workers(&c, fd, block_size, &res, &p);
	if (pthread_cond_destroy(&c.cond) != 0 ||
	    pthread_mutex_destroy(&c.lock) != 0)
		abort();
	if (r == 0 && how->skip_unchanged &&
	    same_as_base(v, name, how->base, c.mfd, res.nblocks)) {
		(void)unlink(tmp); /* best effort, as on an error */
		closep(&c.mfd);
		res.version = how->base;
		res.unchanged = true;
		*ret = res;
		return 0;
	}
	if (r == 0) {
		progress_finish(&p, res.size);
		/* commit_manifest() consumes the temporary file. */
		r = commit_manifest(v, &req, c.mfd, tmp, &cr);
		commit_result_fini(&cr);
	} else {
		(void)unlink(tmp); /* best effort; r is the error */
	}
	closep(&c.mfd);
	if (r < 0)
		return r;
	res.version = cr.version;
	*ret = res;
	return 0;
}

int import_file(struct store *s, struct versions *v, const char *name,
		const char *path, uint32_t block_size, bool show_progress,
		struct import_result *ret)
{
	/* An import from the command line ignores leases (issue 3). */
	static const struct import_commit how = {
	    .base = COMMIT_BASE_ANY,
	    .author = "import",
	};

	return do_import(s, v, name, path, block_size, show_progress, &how,
			 ret);
}

int import_file_as(struct store *s, struct versions *v, const char *name,
		   const char *path, uint32_t block_size,
		   const struct import_commit *how, struct import_result *ret)
{
	return do_import(s, v, name, path, block_size, false, how, ret);
}
