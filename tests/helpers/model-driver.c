// SPDX-License-Identifier: MIT
/* Random-operation driver for the model test (tests/faults/055-model.sh).
 *
 * Runs a seeded random sequence of operations on IMAGE (the file of a
 * vmferry mount) and on a plain in-memory model of the disk, loaded from
 * MODEL and written back to it at the end, and compares every byte every
 * read returns with the model.  Operations: reads and writes of any size
 * (1 byte to 4 MiB) and offset (unaligned, block-aligned, straddling a
 * block boundary, running into the end of the file), through the page
 * cache or with O_DIRECT (so the daemon itself answers), discards and
 * write-zeroes (fallocate), fsync and fdatasync, dropping the page
 * cache, and now and then the command given with --sync (`vmferry sync`).
 * The shell script does remounts and server-side versions between runs.
 *
 *   model-driver [--verify] [--sync CMD] [--sync-every N] [--writes-only]
 *                IMAGE MODEL SEED OPS
 *
 * --verify first reads the whole image and compares it with the model.
 * Prints one line "STATS key=value..." at the end; wrong= counts the
 * bytes a read returned that differ from the model.  Exits 0 when it
 * ran (mismatches are reported, not fatal), 1 on an I/O error or a
 * failed sync, 2 on usage errors.  Single-threaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLK	    65536u
#define MAX_IO	    (4u << 20)
#define MAX_REPORTS 10

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256**: fast, and the same sequence everywhere for a seed. */
static uint64_t rnd(struct rng *g)
{
	uint64_t *s = g->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

static uint64_t below(struct rng *g, uint64_t n)
{
	return n ? rnd(g) % n : 0;
}

struct driver {
	const char *image;
	const char *sync_cmd;
	uint64_t sync_every;
	bool writes_only;
	int fd_buf;    /* through the page cache */
	int fd_direct; /* O_DIRECT: every byte from the daemon */
	uint8_t *model;
	uint64_t size;
	uint8_t *buf; /* MAX_IO, page aligned */
	struct rng g;
	uint64_t op; /* index of the current operation */
	uint64_t reads, writes, zeroes, fsyncs, syncs, drops;
	uint64_t bytes_read, bytes_written, wrong, reports;
};

/* A length: mostly small, sometimes a block or several, rarely MiBs. */
static uint64_t pick_len(struct rng *g)
{
	uint64_t r = below(g, 100);

	if (r < 8)
		return 1;
	if (r < 30)
		return 1 + below(g, 512);
	if (r < 48)
		return 4096 * (1 + below(g, 4));
	if (r < 63)
		return 1 + below(g, BLK);
	if (r < 72)
		return BLK * (1 + below(g, 2));
	if (r < 90)
		return 1 + below(g, 3 * BLK);
	if (r < 98)
		return 1 + below(g, 1u << 20);
	return (1u << 20) + below(g, MAX_IO - (1u << 20) + 1);
}

/* An offset for LEN bytes: anywhere, block-aligned, ending just past a
 * block boundary, or near the end of the image. */
static uint64_t pick_off(struct rng *g, uint64_t size, uint64_t len)
{
	uint64_t nblk = (size + BLK - 1) / BLK;
	uint64_t b = below(g, nblk);

	switch (below(g, 5)) {
	case 0:
	case 1:
		return below(g, size);
	case 2:
		return b * BLK;
	case 3: {
		uint64_t back = 1 + below(g, len < BLK ? len : BLK);
		uint64_t edge = (b + 1) * BLK;
		return edge > back && edge - back < size ? edge - back : 0;
	}
	default: {
		uint64_t back = 1 + below(g, 2 * BLK);
		return back < size ? size - back : 0;
	}
	}
}

static void fill(struct driver *d, uint8_t *p, uint64_t len, uint64_t off)
{
	uint64_t i, r = below(&d->g, 10);

	if (r < 6) {
		for (i = 0; i + 8 <= len; i += 8) {
			uint64_t v = rnd(&d->g);
			memcpy(p + i, &v, 8);
		}
		for (; i < len; i++)
			p[i] = (uint8_t)rnd(&d->g);
	} else if (r < 8) {
		memset(p, 0, len); /* whole zero blocks: never transferred */
	} else if (r < 9) {
		memset(p, (int)(1 + below(&d->g, 255)), len);
	} else {
		/* Bytes the image already holds elsewhere: blocks whose hash
		 * the store already has. */
		uint64_t src = below(&d->g, d->size - len + 1) / BLK * BLK;
		if (src + len > d->size)
			src = d->size - len;
		(void)off;
		memcpy(p, d->model + src, len);
	}
}

static int full_pread(int fd, uint8_t *p, uint64_t len, uint64_t off,
		      uint64_t *ret_n)
{
	uint64_t n = 0;

	while (n < len) {
		ssize_t r = pread(fd, p + n, len - n, (off_t)(off + n));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		n += (uint64_t)r;
	}
	*ret_n = n;
	return 0;
}

static int full_pwrite(int fd, const uint8_t *p, uint64_t len, uint64_t off)
{
	uint64_t n = 0;

	while (n < len) {
		ssize_t r = pwrite(fd, p + n, len - n, (off_t)(off + n));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		n += (uint64_t)r;
	}
	return 0;
}

/* Reads LEN bytes at OFF and compares them with the model. */
static int do_read(struct driver *d, int fd, uint64_t off, uint64_t len)
{
	uint64_t want =
	    off >= d->size ? 0 : (d->size - off < len ? d->size - off : len);
	uint64_t n, i, bad = 0, first = 0;
	int r = full_pread(fd, d->buf, len, off, &n);

	if (r < 0) {
		fprintf(stderr,
			"op %" PRIu64 ": read %" PRIu64 " at %" PRIu64 ": %s\n",
			d->op, len, off, strerror(-r));
		return r;
	}
	d->reads++;
	d->bytes_read += n;
	if (n != want) {
		fprintf(stderr,
			"op %" PRIu64 ": read %" PRIu64 " at %" PRIu64
			" returned %" PRIu64 " bytes, want %" PRIu64 "\n",
			d->op, len, off, n, want);
		d->wrong += n > want ? n - want : want - n;
		if (n > want)
			n = want;
	}
	for (i = 0; i < n; i++) {
		if (d->buf[i] != d->model[off + i]) {
			if (!bad)
				first = off + i;
			bad++;
		}
	}
	if (bad) {
		d->wrong += bad;
		if (d->reports++ < MAX_REPORTS)
			fprintf(stderr,
				"MISMATCH op %" PRIu64 ": read %" PRIu64
				" at %" PRIu64 " (%s): %" PRIu64
				" bytes differ, first at %" PRIu64
				" (block %" PRIu64 "+%" PRIu64
				"): got %02x want %02x\n",
				d->op, len, off,
				fd == d->fd_direct ? "direct" : "cached", bad,
				first, first / BLK, first % BLK,
				d->buf[first - off], d->model[first]);
	}
	return 0;
}

static int verify_all(struct driver *d)
{
	uint64_t off;
	int r;

	for (off = 0; off < d->size; off += 1u << 20) {
		r = do_read(d, d->fd_direct, off, 1u << 20);
		if (r < 0)
			return r;
	}
	return 0;
}

static int do_write(struct driver *d)
{
	uint64_t len = pick_len(&d->g), off;
	int fd = below(&d->g, 2) ? d->fd_direct : d->fd_buf;
	int r;

	if (len > d->size)
		len = d->size;
	off = pick_off(&d->g, d->size, len);
	if (off + len > d->size)
		len = d->size - off;
	fill(d, d->buf, len, off);
	r = full_pwrite(fd, d->buf, len, off);
	if (r < 0) {
		fprintf(stderr,
			"op %" PRIu64 ": write %" PRIu64 " at %" PRIu64
			": %s\n",
			d->op, len, off, strerror(-r));
		return r;
	}
	memcpy(d->model + off, d->buf, len);
	d->writes++;
	d->bytes_written += len;
	return 0;
}

static int do_zero(struct driver *d)
{
	uint64_t len = pick_len(&d->g), off;
	int mode =
	    FALLOC_FL_KEEP_SIZE |
	    (below(&d->g, 2) ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);

	if (len > d->size)
		len = d->size;
	off = pick_off(&d->g, d->size, len);
	if (off + len > d->size)
		len = d->size - off;
	if (fallocate(d->fd_buf, mode, (off_t)off, (off_t)len) < 0) {
		fprintf(stderr,
			"op %" PRIu64 ": zero %" PRIu64 " at %" PRIu64 ": %m\n",
			d->op, len, off);
		return -errno;
	}
	memset(d->model + off, 0, len);
	d->zeroes++;
	d->bytes_written += len;
	return 0;
}

static int do_sync(struct driver *d)
{
	int r = system(d->sync_cmd);

	if (r != 0) {
		fprintf(stderr, "op %" PRIu64 ": `%s` failed (status %d)\n",
			d->op, d->sync_cmd, r);
		return -EIO;
	}
	d->syncs++;
	return 0;
}

static int one_op(struct driver *d)
{
	uint64_t r = below(&d->g, 1000);

	if (d->sync_cmd && d->sync_every && below(&d->g, d->sync_every) == 0)
		return do_sync(d);
	if (d->writes_only && r < 470)
		r += 470;
	if (r < 470) {
		uint64_t len = pick_len(&d->g);
		uint64_t off = pick_off(&d->g, d->size, len);
		return do_read(d, below(&d->g, 2) ? d->fd_direct : d->fd_buf,
			       off, len);
	}
	if (r < 900)
		return do_write(d);
	if (r < 940)
		return do_zero(d);
	if (r < 995) {
		int fd = below(&d->g, 2) ? d->fd_direct : d->fd_buf;
		d->fsyncs++;
		if ((r & 1 ? fdatasync(fd) : fsync(fd)) < 0) {
			fprintf(stderr, "op %" PRIu64 ": fsync: %m\n", d->op);
			return -errno;
		}
		return 0;
	}
	/* Drop the page cache, so buffered reads reach the daemon too. */
	d->drops++;
	(void)posix_fadvise(d->fd_buf, 0, 0, POSIX_FADV_DONTNEED);
	return 0;
}

static int load_model(struct driver *d, const char *path)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint64_t n;
	int r;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "%s: %m\n", path);
		return -1;
	}
	d->size = (uint64_t)st.st_size;
	d->model = malloc(d->size ? d->size : 1);
	if (!d->model)
		return -1;
	r = full_pread(fd, d->model, d->size, 0, &n);
	close(fd);
	if (r < 0 || n != d->size) {
		fprintf(stderr, "%s: short read\n", path);
		return -1;
	}
	return 0;
}

static int save_model(struct driver *d, const char *path)
{
	int fd = open(path, O_WRONLY);
	int r;

	if (fd < 0) {
		fprintf(stderr, "%s: %m\n", path);
		return -1;
	}
	r = full_pwrite(fd, d->model, d->size, 0);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

static void usage(void)
{
	fprintf(stderr, "usage: model-driver [--verify] [--sync CMD] "
			"[--sync-every N] [--writes-only] IMAGE MODEL SEED "
			"OPS\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct driver d = {.sync_every = 2000};
	bool verify = false;
	uint64_t seed, ops, x;
	struct timespec t0, t1;
	struct stat st;
	double secs;
	int i = 1, r = 0;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--verify"))
			verify = true;
		else if (!strcmp(argv[i], "--writes-only"))
			d.writes_only = true;
		else if (!strcmp(argv[i], "--sync") && i + 1 < argc)
			d.sync_cmd = argv[++i];
		else if (!strcmp(argv[i], "--sync-every") && i + 1 < argc)
			d.sync_every = strtoull(argv[++i], NULL, 10);
		else
			usage();
	}
	if (argc - i != 4)
		usage();
	d.image = argv[i];
	seed = strtoull(argv[i + 2], NULL, 10);
	ops = strtoull(argv[i + 3], NULL, 10);
	x = seed;
	for (int k = 0; k < 4; k++)
		d.g.s[k] = splitmix64(&x);
	if (load_model(&d, argv[i + 1]) < 0)
		return 1;
	d.fd_buf = open(d.image, O_RDWR);
	d.fd_direct = open(d.image, O_RDWR | O_DIRECT);
	if (d.fd_buf < 0 || d.fd_direct < 0 || fstat(d.fd_buf, &st) < 0) {
		fprintf(stderr, "%s: %m\n", d.image);
		return 1;
	}
	if ((uint64_t)st.st_size != d.size) {
		fprintf(stderr, "%s: size %lld, the model's %" PRIu64 "\n",
			d.image, (long long)st.st_size, d.size);
		return 1;
	}
	if (posix_memalign((void **)&d.buf, 4096, MAX_IO) != 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (verify)
		r = verify_all(&d);
	for (d.op = 0; r == 0 && d.op < ops; d.op++)
		r = one_op(&d);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (close(d.fd_buf) < 0 || close(d.fd_direct) < 0) {
		fprintf(stderr, "%s: close: %m\n", d.image);
		r = -EIO;
	}
	if (save_model(&d, argv[i + 1]) < 0)
		r = -EIO;
	printf("STATS ops=%" PRIu64 " reads=%" PRIu64 " writes=%" PRIu64
	       " zeroes=%" PRIu64 " fsyncs=%" PRIu64 " syncs=%" PRIu64
	       " drops=%" PRIu64 " bytes_read=%" PRIu64
	       " bytes_written=%" PRIu64 " wrong=%" PRIu64 " secs=%.2f\n",
	       d.op, d.reads, d.writes, d.zeroes, d.fsyncs, d.syncs, d.drops,
	       d.bytes_read, d.bytes_written, d.wrong, secs);
	free(d.buf);
	free(d.model);
	return r < 0 ? 1 : 0;
}
