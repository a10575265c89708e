/* SPDX-License-Identifier: MIT */
/* FUSE callbacks.  See fuse_ops.h.
 *
 * Called on libfuse's worker threads; everything they touch is in
 * struct fuse_ops_ctx (read-only after start) or behind image_*.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#include "ctl.h"
#include "fuse_ops.h"
#include "image.h"

/* Largest request the kernel may send: 1 MiB (max_pages 256). */
#define FUSE_OPS_MAX_IO (1u << 20)

static struct fuse_ops_ctx *ctx(void)
{
	return fuse_get_context()->private_data;
}

static bool is_file(const char *path)
{
	return path[0] == '/' && strcmp(path + 1, ctx()->file_name) == 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* max_write also sets max_pages, which bounds reads: 1 MiB. */
	conn->max_write = FUSE_OPS_MAX_IO;
	conn->max_readahead = FUSE_OPS_MAX_IO;
	conn->max_read = FUSE_OPS_MAX_IO; /* must match -o max_read */
	/* No kernel writeback cache: the kernel would acknowledge writes
	 * the daemon has not seen. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* The version is immutable while mounted, so the page cache may
	 * keep what it read across opens. */
	cfg->kernel_cache = 1;
	cfg->entry_timeout = 60;
	cfg->attr_timeout = 60;
	cfg->use_ino = 1;
	return fuse_get_context()->private_data;
}

static int op_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct fuse_ops_ctx *c = ctx();

	(void)fi;
	memset(st, 0, sizeof(*st));
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_mtime = st->st_ctime = st->st_atime = c->mtime;
	if (strcmp(path, "/") == 0) {
		st->st_ino = 1;
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (!is_file(path))
		return -ENOENT;
	st->st_ino = 2;
	st->st_mode = S_IFREG | (c->read_only ? 0444 : 0644);
	st->st_nlink = 1;
	st->st_size = (off_t)c->size;
	st->st_blksize = (blksize_t)image_header(c->im)->block_size;
	st->st_blocks = (blkcnt_t)((c->size + 511) / 512);
	return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, ctx()->file_name, NULL, 0, 0);
	return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	if (!is_file(path))
		return strcmp(path, "/") == 0 ? -EISDIR : -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && ctx()->read_only)
		return -EROFS;
	/* libfuse passes O_TRUNC here (atomic_o_trunc): the disk's size
	 * is fixed, and emptying it is never what a user meant. */
	if (fi->flags & O_TRUNC)
		return -EPERM;
	fi->keep_cache = 1;
	/* Whether this handle may write, for op_flush(): the kernel's
	 * FLUSH carries no open flags. */
	fi->fh = (fi->flags & O_ACCMODE) != O_RDONLY;
	atomic_fetch_add(&ctx()->open_files, 1);
	return 0;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	atomic_fetch_sub(&ctx()->open_files, 1);
	return 0;
}

static int op_read(const char *path, char *buf, size_t len, off_t off,
		   struct fuse_file_info *fi)
{
	struct fuse_ops_ctx *c = ctx();
	ssize_t n;

	(void)path;
	(void)fi;
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= c->size) {
		log_warn("read at %lld is past the end of the image (%llu "
			 "bytes): returning end of file",
			 (long long)off, (unsigned long long)c->size);
		return 0;
	}
	if (atomic_load(&c->stopped))
		return -EIO;
	log_debug(LOG_CAT_FUSE, "read %zu at %lld", len, (long long)off);
	n = image_read(c->im, buf, len, (uint64_t)off);
	if (n < 0)
		log_error_errno((int)n, "read %zu bytes at %lld: %m", len,
				(long long)off);
	return (int)n;
}

static int op_write(const char *path, const char *buf, size_t len, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_ops_ctx *c = ctx();
	ssize_t n;

	(void)path;
	(void)fi;
	if (c->read_only)
		return -EROFS;
	if (off < 0)
		return -EINVAL;
	if (atomic_load(&c->stopped))
		return -EIO;
	log_debug(LOG_CAT_FUSE, "write %zu at %lld", len, (long long)off);
	n = image_write(c->im, buf, len, (uint64_t)off);
	if (n < 0)
		log_error_errno((int)n, "write %zu bytes at %lld: %m", len,
				(long long)off);
	return (int)n;
}

/* The guest's discard (QEMU's raw driver punches a hole) and write-zeroes
 * become zero blocks.  The size is fixed: plain allocation inside the
 * image succeeds (every block exists), anything growing it is refused. */
static int op_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	struct fuse_ops_ctx *c = ctx();
	int zero = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
	int r;

	(void)path;
	(void)fi;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (c->read_only)
		return -EROFS;
	if (mode & ~(zero | FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;
	if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EINVAL; /* as fallocate(2) says */
	if (!(mode & FALLOC_FL_KEEP_SIZE) &&
	    (uint64_t)off + (uint64_t)len > c->size)
		return -EFBIG;
	if (!(mode & zero))
		return 0;
	if (atomic_load(&c->stopped))
		return -EIO;
	log_debug(LOG_CAT_FUSE, "zero %lld at %lld", (long long)len,
		  (long long)off);
	r = image_zero(c->im, (uint64_t)off, (uint64_t)len);
	if (r < 0)
		log_error_errno(r, "zeroing %lld bytes at %lld: %m",
				(long long)len, (long long)off);
	return r;
}

/* flush (every close of a handle that may write) and fsync return once
 * everything written before them is durable in LMDB.  Closing a
 * read-only handle waits for nothing: it wrote nothing, and a reader
 * must not get another writer's error (ENOSPC while the cache's file
 * system is full) from close(). */
static int op_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	if (!fi->fh)
		return 0;
	return image_flush(ctx()->im);
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	return image_flush(ctx()->im);
}

/* The image's size is fixed: only a no-op truncate is allowed (an
 * O_TRUNC open would otherwise empty the disk). */
static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)fi;
	if (!is_file(path))
		return -EISDIR;
	return (uint64_t)size == ctx()->size ? 0 : -EPERM;
}

static int op_statfs(const char *path, struct statvfs *st)
{
	struct fuse_ops_ctx *c = ctx();
	uint32_t bs = image_header(c->im)->block_size;

	(void)path;
	memset(st, 0, sizeof(*st));
	st->f_bsize = bs;
	st->f_frsize = bs;
	st->f_blocks = (c->size + bs - 1) / bs;
	st->f_files = 2;
	st->f_namemax = 255;
	return 0;
}

static int op_getxattr(const char *path, const char *name, char *value,
		       size_t size)
{
	struct fuse_ops_ctx *c = ctx();
	size_t len;

	if (strcmp(path, "/") != 0 || strcmp(name, CTL_XATTR) != 0 ||
	    !c->ctl_path)
		return -ENODATA;
	len = strlen(c->ctl_path);
	if (size == 0)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(value, c->ctl_path, len);
	return (int)len;
}

static const struct fuse_operations ops = {
    .init = op_init,
    .getattr = op_getattr,
    .readdir = op_readdir,
    .open = op_open,
    .release = op_release,
    .read = op_read,
    .write = op_write,
    .fallocate = op_fallocate,
    .truncate = op_truncate,
    .flush = op_flush,
    .fsync = op_fsync,
    .statfs = op_statfs,
    .getxattr = op_getxattr,
};

const struct fuse_operations *fuse_ops_get(void)
{
	return &ops;
}
