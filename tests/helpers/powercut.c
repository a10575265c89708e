// SPDX-License-Identifier: MIT
/* powercut: a FUSE passthrough that forgets what was not fsynced.
 *
 *   powercut [-v] BACKING_DIR MOUNTPOINT
 *
 * Mirrors BACKING_DIR at MOUNTPOINT (in the foreground, single-threaded).
 * Writes go through to the backing files at once, so reads, mmap (LMDB's
 * lock.mdb is a shared writable mapping; its data.mdb a read-only one)
 * and sizes are plain passthrough.  Before a page (4 KiB) of a file is
 * first changed since that file's last fsync/fdatasync, its durable
 * contents are saved in memory, as is the file's durable size.  fsync or
 * fdatasync of the file, and every write through a handle opened with
 * O_SYNC/O_DSYNC (LMDB writes its meta pages so), make the new contents
 * durable: the saved pages are dropped (or patched).
 *
 * The layer's exit IS the power cut: when it is unmounted (fusermount3
 * -u, or SIGTERM/SIGINT), it writes the saved pages back and truncates
 * each file to its durable size, so the next mount sees every file as
 * of its last fsync, and the kernel's page cache of the old mount is
 * gone with it, as after a reboot.  There is no clean shutdown.
 *
 * Limits: namespace operations (create, mkdir, unlink, rename) are
 * durable at once, as on a file system mounted with dirsync; only file
 * contents and sizes are rolled back.  A file created and never fsynced
 * comes back empty.  Nothing is ever really fsynced on the backing file
 * system: the layer models the power cut, not the machine's.
 *
 * Single-threaded (fuse -s): no locks.  Prints what the cut restored on
 * stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#define FUSE_USE_VERSION 31
#include <fuse.h>

#define PC_PAGE 4096

struct saved_page {
	uint64_t pgno;
	uint8_t data[PC_PAGE]; /* durable bytes (up to the durable size) */
};

/* One file with writes not yet durable. */
struct undo {
	ino_t ino;
	int fd;	     /* a writable fd of our own, for the cut */
	off_t dsize; /* durable size */
	struct saved_page *pages;
	size_t npages, cap;
	struct undo *next;
};

static int base_fd = -1;
static struct undo *undos;
static bool verbose;
static uint64_t n_syncs, n_saved;

/* "/a/b" -> "a/b", "/" -> "." (relative to base_fd). */
static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

static struct undo *undo_find(ino_t ino)
{
	struct undo *u;

	for (u = undos; u; u = u->next)
		if (u->ino == ino)
			return u;
	return NULL;
}

static void undo_drop(struct undo *u)
{
	struct undo **pp;

	for (pp = &undos; *pp; pp = &(*pp)->next) {
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	}
	close(u->fd);
	free(u->pages);
	free(u);
}

/* The record of fd's file, made (with the current size as the durable
 * one) if it has none. */
static int undo_get(int fd, struct undo **ret)
{
	struct stat st;
	struct undo *u;
	char p[64];

	if (fstat(fd, &st) < 0)
		return -errno;
	u = undo_find(st.st_ino);
	if (!u) {
		u = calloc(1, sizeof(*u));
		if (!u)
			return -ENOMEM;
		/* Our own writable fd: the caller's may be read-only or
		 * closed before the cut. */
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		u->fd = open(p, O_RDWR | O_CLOEXEC);
		if (u->fd < 0) {
			free(u);
			return -errno;
		}
		u->ino = st.st_ino;
		u->dsize = st.st_size;
		u->next = undos;
		undos = u;
	}
	*ret = u;
	return 0;
}

static struct saved_page *page_find(struct undo *u, uint64_t pgno)
{
	size_t i;

	for (i = 0; i < u->npages; i++)
		if (u->pages[i].pgno == pgno)
			return &u->pages[i];
	return NULL;
}

/* Save the durable contents of pages [first, last] not saved yet. */
static int save_pages(struct undo *u, uint64_t first, uint64_t last)
{
	uint64_t pg;

	for (pg = first; pg <= last; pg++) {
		struct saved_page *sp;
		off_t off = (off_t)(pg * PC_PAGE);
		ssize_t n;

		if (off >= u->dsize)
			break; /* beyond the durable size: nothing to keep */
		if (page_find(u, pg))
			continue;
		if (u->npages == u->cap) {
			size_t cap = u->cap ? u->cap * 2 : 16;
			struct saved_page *np =
			    realloc(u->pages, cap * sizeof(*np));
			if (!np)
				return -ENOMEM;
			u->pages = np;
			u->cap = cap;
		}
		sp = &u->pages[u->npages];
		memset(sp->data, 0, PC_PAGE);
		n = pread(u->fd, sp->data, PC_PAGE, off);
		if (n < 0)
			return -errno;
		sp->pgno = pg;
		u->npages++;
		n_saved++;
	}
	return 0;
}

/* The range [off, off+len) is about to change. */
static int before_change(int fd, off_t off, off_t len)
{
	struct undo *u;
	int r;

	if (len <= 0)
		return 0;
	r = undo_get(fd, &u);
	if (r < 0)
		return r;
	return save_pages(u, (uint64_t)off / PC_PAGE,
			  (uint64_t)(off + len - 1) / PC_PAGE);
}

/* A synchronous write made [off, off+len) durable. */
static void made_durable(int fd, const char *buf, size_t len, off_t off)
{
	struct stat st;
	struct undo *u;
	size_t i;

	if (fstat(fd, &st) < 0)
		return;
	u = undo_find(st.st_ino);
	if (!u)
		return;
	for (i = 0; i < u->npages; i++) {
		struct saved_page *sp = &u->pages[i];
		off_t lo = (off_t)(sp->pgno * PC_PAGE), hi = lo + PC_PAGE;
		off_t a = off > lo ? off : lo;
		off_t b = off + (off_t)len < hi ? off + (off_t)len : hi;

		if (a < b)
			memcpy(sp->data + (a - lo), buf + (a - off),
			       (size_t)(b - a));
	}
	if (off <= u->dsize && off + (off_t)len > u->dsize)
		u->dsize = off + (off_t)len;
}

static void cut(void)
{
	size_t files = 0, pages = 0;

	while (undos) {
		struct undo *u = undos;
		size_t i;

		for (i = 0; i < u->npages; i++) {
			off_t off = (off_t)(u->pages[i].pgno * PC_PAGE);
			size_t n = PC_PAGE;

			if (off >= u->dsize)
				continue;
			if (u->dsize - off < (off_t)n)
				n = (size_t)(u->dsize - off);
			if (pwrite(u->fd, u->pages[i].data, n, off) !=
			    (ssize_t)n)
				perror("powercut: restoring a page");
			pages++;
		}
		if (ftruncate(u->fd, u->dsize) < 0)
			perror("powercut: restoring a size");
		files++;
		undo_drop(u);
	}
	fprintf(stderr,
		"powercut: cut: %zu files rolled back, %zu pages restored "
		"(%" PRIu64 " fsyncs, %" PRIu64 " pages saved in all)\n",
		files, pages, n_syncs, n_saved);
}

static void *pc_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	/* No attribute or entry caching: sizes change under rollback only
	 * across mounts, but keep the kernel honest anyway. */
	cfg->attr_timeout = 0;
	cfg->entry_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->use_ino = 1;
	cfg->direct_io = 0; /* mmap (lock.mdb, data.mdb) needs the page cache */
	return NULL;
}

static int pc_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	int r = fi ? fstat((int)fi->fh, st)
		   : fstatat(base_fd, rel(path), st, AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

static int pc_access(const char *path, int mask)
{
	return faccessat(base_fd, rel(path), mask, 0) < 0 ? -errno : 0;
}

static int pc_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct dirent *de;
	DIR *d;
	int fd;

	(void)off;
	(void)fi;
	(void)flags;
	fd = openat(base_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL)
		if (filler(buf, de->d_name, NULL, 0, 0))
			break;
	closedir(d);
	return 0;
}

static int pc_mkdir(const char *path, mode_t mode)
{
	return mkdirat(base_fd, rel(path), mode) < 0 ? -errno : 0;
}

static int pc_unlink(const char *path)
{
	return unlinkat(base_fd, rel(path), 0) < 0 ? -errno : 0;
}

/* libfuse renames a file unlinked while open to .fuse_hidden*; a disk
 * would have removed it (vmferry discard removes a copy it still has
 * open).  Remove those, if that is all the directory holds. */
static int drop_hidden(const char *path)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0;

	fd = openat(base_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (strncmp(de->d_name, ".fuse_hidden", 12) != 0)
			r = -ENOTEMPTY;
		else if (unlinkat(dirfd(d), de->d_name, 0) < 0)
			r = -errno;
	}
	closedir(d);
	return r;
}

static int pc_rmdir(const char *path)
{
	int r;

	if (unlinkat(base_fd, rel(path), AT_REMOVEDIR) == 0)
		return 0;
	if (errno != ENOTEMPTY)
		return -errno;
	r = drop_hidden(rel(path));
	if (r < 0)
		return r;
	return unlinkat(base_fd, rel(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int pc_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags)
		return -EINVAL;
	return renameat(base_fd, rel(from), base_fd, rel(to)) < 0 ? -errno : 0;
}

static int pc_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int r = fi ? fchmod((int)fi->fh, mode)
		   : fchmodat(base_fd, rel(path), mode, 0);
	return r < 0 ? -errno : 0;
}

static int pc_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	int r = fi ? futimens((int)fi->fh, tv)
		   : utimensat(base_fd, rel(path), tv, AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

static int do_truncate(int fd, off_t size)
{
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (size < st.st_size) {
		r = before_change(fd, size, st.st_size - size);
		if (r < 0)
			return r;
	} else {
		struct undo *u;

		r = undo_get(fd, &u); /* remember the durable size */
		if (r < 0)
			return r;
	}
	return ftruncate(fd, size) < 0 ? -errno : 0;
}

static int pc_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	int fd, r;

	if (fi)
		return do_truncate((int)fi->fh, size);
	fd = openat(base_fd, rel(path), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = do_truncate(fd, size);
	close(fd);
	return r;
}

/* fd was opened without O_TRUNC: an O_TRUNC open is a truncation to 0,
 * rolled back like any other. */
static int opened(int fd, struct fuse_file_info *fi)
{
	int r;

	if (fd < 0)
		return -errno;
	if (fi->flags & O_TRUNC) {
		r = do_truncate(fd, 0);
		if (r < 0) {
			close(fd);
			return r;
		}
	}
	fi->fh = (uint64_t)fd;
	return 0;
}

static int pc_open(const char *path, struct fuse_file_info *fi)
{
	/* O_DIRECT is the kernel's business (it bypasses the page cache of
	 * this file system); the backing file is read through its own,
	 * and its buffers need not be aligned. */
	int flags = fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_DIRECT);

	return opened(
	    openat(base_fd, rel(path), (flags & ~O_TRUNC) | O_CLOEXEC), fi);
}

static int pc_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return opened(openat(base_fd, rel(path),
			     (fi->flags & ~O_TRUNC) | O_CREAT | O_CLOEXEC,
			     mode),
		      fi);
}

static int pc_read(const char *path, char *buf, size_t len, off_t off,
		   struct fuse_file_info *fi)
{
	ssize_t n;

	(void)path;
	n = pread((int)fi->fh, buf, len, off);
	return n < 0 ? -errno : (int)n;
}

static int pc_write(const char *path, const char *buf, size_t len, off_t off,
		    struct fuse_file_info *fi)
{
	ssize_t n;
	int r;

	(void)path;
	r = before_change((int)fi->fh, off, (off_t)len);
	if (r < 0)
		return r;
	n = pwrite((int)fi->fh, buf, len, off);
	if (n < 0)
		return -errno;
	if (fi->flags & (O_SYNC | O_DSYNC))
		made_durable((int)fi->fh, buf, (size_t)n, off);
	return (int)n;
}

static int pc_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	return fstatvfs(base_fd, st) < 0 ? -errno : 0;
}

static int pc_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

static int pc_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct stat st;
	struct undo *u;

	(void)path;
	(void)datasync; /* fdatasync makes the data and the size durable */
	if (fstat((int)fi->fh, &st) < 0)
		return -errno;
	n_syncs++;
	u = undo_find(st.st_ino);
	if (u) {
		if (verbose)
			fprintf(stderr, "powercut: fsync ino %lu: %zu pages\n",
				(unsigned long)u->ino, u->npages);
		undo_drop(u);
	}
	return 0;
}

static int pc_fsyncdir(const char *path, int datasync,
		       struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	return 0; /* namespace operations are durable at once */
}

static const struct fuse_operations pc_ops = {
    .init = pc_init,
    .getattr = pc_getattr,
    .access = pc_access,
    .readdir = pc_readdir,
    .mkdir = pc_mkdir,
    .unlink = pc_unlink,
    .rmdir = pc_rmdir,
    .rename = pc_rename,
    .chmod = pc_chmod,
    .utimens = pc_utimens,
    .truncate = pc_truncate,
    .open = pc_open,
    .create = pc_create,
    .read = pc_read,
    .write = pc_write,
    .statfs = pc_statfs,
    .release = pc_release,
    .fsync = pc_fsync,
    .fsyncdir = pc_fsyncdir,
};

int main(int argc, char **argv)
{
	char *fargv[8];
	int fargc = 0, r;

	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		verbose = true;
		argv++;
		argc--;
	}
	if (argc != 3) {
		fprintf(stderr,
			"usage: powercut [-v] BACKING_DIR MOUNTPOINT\n");
		return 2;
	}
	base_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (base_fd < 0) {
		perror(argv[1]);
		return 1;
	}
	fargv[fargc++] = argv[0];
	fargv[fargc++] = (char *)"-f";
	fargv[fargc++] = (char *)"-s";
	fargv[fargc++] = (char *)"-o";
	fargv[fargc++] = (char *)"fsname=powercut,subtype=powercut";
	fargv[fargc++] = argv[2];
	fargv[fargc] = NULL;
	r = fuse_main(fargc, fargv, &pc_ops, NULL);
	cut();
	close(base_fd);
	return r;
}
