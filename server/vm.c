/* SPDX-License-Identifier: MIT */
/* VMs the server runs (see vm.h).
 *
 * Lock order: m->lock, then vm->lock.  A VM's thread is the only one
 * that changes its state past VM_STARTING; others set stop_requested
 * and read.  No lock is held across disk I/O, QEMU's start or a wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "accel.h"
#include "cleanup.h"
#include "io.h"
#include "log.h"
#include "mutex.h"
#include "qemu.h"
#include "thread.h"
#include "util.h"

#include "import.h"
#include "versions.h"
#include "vm.h"
#include "vm_disk.h"

#define VM_POLL_MS 250

struct vm {
	atomic_uint refs;
	struct vms *m;
	char name[VMF_NAME_MAX + 1];
	char author[VMF_LEASE_HOLDER_MAX + 1];
	char dir[4096], disk[4200], console[4200], qmp[4200], vnc[4200];
	struct lease lease; /* the VM's thread's */
	pthread_t thread;
	int in_rd; /* the pipe's read end, for QEMU; the thread's */
	pthread_mutex_t lock;
	/* protected by lock: */
	struct vm_status st;
	bool stop_requested;
	bool quit_now; /* the server is stopping: no grace */
	int in_wr;     /* the pipe's write end, -1 once QEMU is gone */
};

struct vms {
	struct versions *v;
	char *dir, *qemu;
	int64_t lease_seconds;
	uint64_t keep_versions;
	unsigned grace_s;
	pthread_mutex_t lock;
	/* protected by lock: */
	struct vm **vm; /* the latest run of each image */
	size_t n;
	bool accel_known;
	enum accel accel;
};

struct vm_console {
	struct vm *vm;
	int fd;
};

const char *vm_state_name(enum vm_state s)
{
	static const char *const names[] = {
	    [VM_STARTING] = "starting", [VM_RUNNING] = "running",
	    [VM_STOPPING] = "stopping", [VM_SAVING] = "saving",
	    [VM_STOPPED] = "stopped",	[VM_FAILED] = "failed",
	};

	return names[s];
}

static bool vm_done(enum vm_state s)
{
	return s == VM_STOPPED || s == VM_FAILED;
}

static void vm_unref(struct vm *vm)
{
	if (!vm || atomic_fetch_sub(&vm->refs, 1) != 1)
		return;
	if (vm->in_wr >= 0)
		close(vm->in_wr);
	if (vm->in_rd >= 0)
		close(vm->in_rd);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

/* A lease "where": "remote" names a VM of this server; one left by a
 * previous server process (stopped or crashed) holds nothing that runs:
 * break it, so the image is not stuck until the lease expires. */
static void break_stale_leases(struct versions *v)
{
	char **names = NULL;
	size_t n = 0;
	struct lease l;

	if (versions_names(v, &names, &n) < 0)
		return; /* nothing broken: the leases expire by themselves */
	for (size_t i = 0; i < n; i++) {
		if (lease_read(v, names[i], &l) < 0 ||
		    !lease_live(&l, now_wall()) ||
		    strcmp(l.where, VMF_LEASE_WHERE_REMOTE) != 0)
			continue;
		if (lease_break(v, names[i], &l) == 0)
			log_warn("image %s: broke the lease of a VM of a "
				 "previous server process (%s): its changes "
				 "since version %" PRIu64 " are lost",
				 names[i], l.holder, l.version);
	}
	versions_names_free(names, n);
}

int vms_new(struct versions *v, const struct vms_config *cfg, struct vms **ret)
{
	struct vms *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	break_stale_leases(v);
	m->v = v;
	m->dir = strdup(cfg->dir);
	m->qemu = cfg->qemu ? strdup(cfg->qemu) : NULL;
	m->lease_seconds = cfg->lease_seconds;
	m->keep_versions = cfg->keep_versions;
	m->grace_s = cfg->grace_s;
	if (!m->dir || (cfg->qemu && !m->qemu) ||
	    pthread_mutex_init(&m->lock, NULL) != 0) {
		free(m->dir);
		free(m->qemu);
		free(m);
		return -ENOMEM;
	}
	*ret = m;
	return 0;
}

/* The latest run of name, with a reference (caller unrefs), or NULL. */
static struct vm *find(struct vms *m, const char *name)
{
	struct vm *vm = NULL;

	mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n && !vm; i++)
		if (strcmp(m->vm[i]->name, name) == 0) {
			vm = m->vm[i];
			atomic_fetch_add(&vm->refs, 1);
		}
	mutex_unlock(&m->lock);
	return vm;
}

static void set_state(struct vm *vm, enum vm_state s, const char *error)
{
	mutex_lock(&vm->lock);
	vm->st.state = s;
	if (error)
		snprintf(vm->st.error, sizeof(vm->st.error), "%s", error);
	mutex_unlock(&vm->lock);
}

static enum accel pick_accel(struct vms *m)
{
	enum accel a = ACCEL_TCG;
	char why[256];

	mutex_lock(&m->lock);
	if (m->accel_known)
		a = m->accel;
	mutex_unlock(&m->lock);
	if (a == ACCEL_KVM)
		return a;
	/* Cached on disk after the first probe: cheap to ask again. */
	if (accel_pick(m->qemu, &a, why, sizeof(why)) < 0)
		a = ACCEL_TCG;
	mutex_lock(&m->lock);
	if (!m->accel_known && *why)
		log_info("VMs run with TCG: %s", why);
	m->accel_known = true;
	m->accel = a;
	mutex_unlock(&m->lock);
	return a;
}

/* Renew the lease if a third of it has passed. */
static void renew(struct vm *vm, int64_t *next)
{
	struct lease_request rq = {
	    .holder = vm->lease.holder,
	    .where = VMF_LEASE_WHERE_REMOTE,
	    .id = vm->lease.id,
	    .seconds = vm->m->lease_seconds,
	};
	bool renewed = false;
	struct lease l;
	int r;

	if (now_wall() < *next)
		return;
	r = lease_acquire(vm->m->v, vm->name, &rq, &l, &renewed);
	if (r < 0 || !renewed)
		log_warn("image %s: the running VM could not renew its lease "
			 "(%s): its commit will be refused",
			 vm->name, r < 0 ? strerror(-r) : "it was broken");
	if (r == 0)
		vm->lease = l;
	*next = now_wall() + vm->m->lease_seconds / 3;
}

/* Boot and wait for the end (or stop it when asked).  0 or -errno. */
static int run_qemu(struct vm *vm, const struct qemu_config *cfg)
{
	int64_t next_renew = now_wall() + vm->m->lease_seconds / 3;
	struct qemu *q = NULL;
	bool stopping = false, quit;
	int r, st = 0;

	r = qemu_start(cfg, &q);
	close(vm->in_rd);
	vm->in_rd = -1;
	if (r < 0)
		return r;
	mutex_lock(&vm->lock);
	if (vm->st.state == VM_STARTING)
		vm->st.state = VM_RUNNING;
	mutex_unlock(&vm->lock);
	log_info("image %s: VM running (QEMU pid %d)", vm->name,
		 (int)qemu_pid(q));
	for (;;) {
		r = qemu_wait(q, VM_POLL_MS, &st);
		if (r == 0)
			break;
		mutex_lock(&vm->lock);
		stopping = vm->stop_requested;
		quit = vm->quit_now;
		if (stopping)
			vm->st.state = VM_STOPPING;
		mutex_unlock(&vm->lock);
		if (stopping) {
			qemu_shutdown(q, quit ? 0 : (int)vm->m->grace_s * 1000,
				      &st);
			break;
		}
		renew(vm, &next_renew);
	}
	qemu_free(q);
	mutex_lock(&vm->lock);
	close(vm->in_wr);
	vm->in_wr = -1;
	mutex_unlock(&vm->lock);
	return 0;
}

/* The disk as the next version, under the lease. */
static int save(struct vm *vm, uint32_t block_size, char *why, size_t len)
{
	struct import_commit how = {
	    .base = vm->st.base,
	    .skip_unchanged = true,
	    .check_lease = true,
	    .lease_id = vm->lease.id,
	    .author = vm->author,
	    .keep_versions = vm->m->keep_versions,
	};
	struct import_result res;
	int r;

	set_state(vm, VM_SAVING, NULL);
	r = import_file_as(versions_store(vm->m->v), vm->m->v, vm->name,
			   vm->disk, block_size, &how, &res);
	if (r < 0) {
		snprintf(why, len, "committing the disk: %s%s", strerror(-r),
			 r == -EBUSY ? " (the lease was broken)" : "");
		return r;
	}
	mutex_lock(&vm->lock);
	vm->st.version = res.version;
	vm->st.unchanged = res.unchanged;
	mutex_unlock(&vm->lock);
	if (res.unchanged) {
		log_info("image %s: the VM stopped; its disk is unchanged: no "
			 "new version (still %" PRIu64 ")",
			 vm->name, res.version);
		return 0;
	}
	log_info("image %s: the VM stopped; its disk is version %" PRIu64
		 " (%" PRIu64 " new blocks)",
		 vm->name, res.version, res.new_blocks);
	return 0;
}

static void *vm_main(void *opaque)
{
	struct vm *vm = opaque;
	struct qemu_config cfg = {
	    .binary = vm->m->qemu,
	    .disk = vm->disk,
	    .qmp_path = vm->qmp,
	    .vnc_path = vm->vnc,
	    .network = true,
	    .new_session = true,
	};
	_cleanup_close_ int out = -1;
	json_t *policy = NULL;
	uint32_t bs = 0;
	bool released = false;
	char why[200] = "";
	struct lease l;
	int r;

	r = vm_disk_write(vm->m->v, vm->name, vm->st.base, vm->disk, &bs);
	if (r < 0)
		snprintf(why, sizeof(why), "writing the disk: %s",
			 strerror(-r));
	if (r == 0) {
		out = open(vm->console, O_WRONLY | O_APPEND | O_CLOEXEC);
		r = out < 0 ? -errno : 0;
	}
	if (r == 0) {
		if (versions_policy(vm->m->v, vm->name, &policy) == 0)
			qemu_policy_size(json_object_get(policy, "vm"),
					 &cfg.memory_mib, &cfg.cpus);
		json_decref(policy);
		cfg.accel = pick_accel(vm->m);
		cfg.in_fd = vm->in_rd;
		cfg.out_fd = out;
		cfg.err_fd = out;
		r = run_qemu(vm, &cfg);
		if (r < 0)
			snprintf(why, sizeof(why), "starting QEMU: %s",
				 strerror(-r));
	}
	if (r == 0)
		r = save(vm, bs, why, sizeof(why));
	if (r < 0)
		log_error("image %s: the VM failed: %s", vm->name, why);
	/* Before the lease goes: the next run of the image, which may
	 * start as soon as it is released, writes the same path. */
	(void)unlink(vm->disk); /* gone or not, it is not needed */
	if (lease_release(vm->m->v, vm->name, vm->lease.id, &l, &released) < 0)
		log_warn("image %s: releasing the VM's lease failed", vm->name);
	set_state(vm, r < 0 ? VM_FAILED : VM_STOPPED, r < 0 ? why : NULL);
	vm_unref(vm);
	return NULL;
}

/* A new VM record for name with its directory, console and pipe. */
static int vm_prepare(struct vms *m, const char *name, const char *author,
		      struct vm **ret)
{
	_cleanup_close_ int fd = -1;
	int pfd[2];
	struct vm *vm = calloc(1, sizeof(*vm));
	int r;

	if (!vm)
		return -ENOMEM;
	atomic_init(&vm->refs, 1);
	vm->m = m;
	vm->in_rd = vm->in_wr = -1;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	snprintf(vm->author, sizeof(vm->author), "%s", author);
	snprintf(vm->dir, sizeof(vm->dir), "%s/run/%s", m->dir, name);
	snprintf(vm->disk, sizeof(vm->disk), "%s/disk.img", vm->dir);
	snprintf(vm->console, sizeof(vm->console), "%s/console.log", vm->dir);
	snprintf(vm->qmp, sizeof(vm->qmp), "%s/qmp.sock", vm->dir);
	snprintf(vm->vnc, sizeof(vm->vnc), "%s/vnc.sock", vm->dir);
	if (pthread_mutex_init(&vm->lock, NULL) != 0)
		abort();
	r = mkdir_p(vm->dir, 0700);
	if (r == 0) {
		fd = open(vm->console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0600);
		r = fd < 0 ? -errno : 0;
	}
	if (r == 0 && pipe2(pfd, O_CLOEXEC) < 0)
		r = -errno;
	if (r < 0) {
		vm_unref(vm);
		return r;
	}
	vm->in_rd = pfd[0];
	vm->in_wr = pfd[1];
	/* Input never blocks a request: a full pipe is -EAGAIN. */
	(void)fcntl(vm->in_wr, F_SETFL, O_NONBLOCK);
	*ret = vm;
	return 0;
}

/* Put vm in the table in place of name's previous run (joined here). */
static void vm_install(struct vms *m, struct vm *vm)
{
	struct vm *old = NULL, **grown;

	mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->vm[i]->name, vm->name) == 0) {
			old = m->vm[i];
			m->vm[i] = vm;
			vm = NULL;
			break;
		}
	if (vm) {
		grown = realloc(m->vm, (m->n + 1) * sizeof(*grown));
		if (!grown)
			abort(); /* a few pointers: out of memory is fatal */
		m->vm = grown;
		m->vm[m->n++] = vm;
	}
	mutex_unlock(&m->lock);
	if (old) {
		/* Its lease is gone, so its thread has finished or is
		 * finishing: no wait on anything but its last steps. */
		pthread_join(old->thread, NULL);
		vm_unref(old);
	}
}

int vms_start(struct vms *m, const char *name, const char *holder,
	      const char *author, struct lease *ret_held)
{
	struct lease_request rq = {
	    .holder = holder,
	    .where = VMF_LEASE_WHERE_REMOTE,
	    .seconds = m->lease_seconds,
	};
	struct vm *vm = NULL;
	bool renewed, released;
	struct lease l, gone;
	uint64_t cur;
	int r;

	if (!m->qemu)
		return -ENOEXEC;
	r = versions_current(m->v, name, &cur);
	if (r < 0)
		return r;
	rq.version = cur;
	/* The lease first: while another run holds it, its directory (the
	 * console it is writing, its disk) is not touched. */
	r = lease_acquire(m->v, name, &rq, &l, &renewed);
	if (r < 0) {
		if (r == -EBUSY)
			*ret_held = l;
		return r;
	}
	r = vm_prepare(m, name, author, &vm);
	if (r == 0) {
		vm->lease = l;
		snprintf(vm->st.holder, sizeof(vm->st.holder), "%s", holder);
		vm->st.since = l.since;
		vm->st.base = cur;
		vm->st.state = VM_STARTING;
		atomic_fetch_add(&vm->refs, 1); /* the thread's */
		r = thread_start(&vm->thread, vm_main, vm, "vm");
		if (r < 0)
			vm_unref(vm); /* the thread's */
	}
	if (r < 0) {
		vm_unref(vm);
		(void)lease_release(m->v, name, l.id, &gone, &released);
		return r;
	}
	vm_install(m, vm);
	log_info("image %s: VM started by %s from version %" PRIu64, name,
		 holder, cur);
	return 0;
}

static int request_stop(struct vm *vm, bool quit)
{
	int r = 0;

	mutex_lock(&vm->lock);
	if (vm_done(vm->st.state) || vm->st.state == VM_SAVING)
		r = -ENOENT;
	else
		vm->stop_requested = true;
	if (quit)
		vm->quit_now = true;
	mutex_unlock(&vm->lock);
	return r;
}

int vms_stop(struct vms *m, const char *name)
{
	struct vm *vm = find(m, name);
	int r;

	if (!vm)
		return -ENOENT;
	r = request_stop(vm, false);
	vm_unref(vm);
	return r;
}

int vms_status(struct vms *m, const char *name, struct vm_status *ret)
{
	struct vm *vm = find(m, name);
	struct stat st;

	if (!vm)
		return -ENOENT;
	mutex_lock(&vm->lock);
	*ret = vm->st;
	mutex_unlock(&vm->lock);
	ret->console_size =
	    stat(vm->console, &st) == 0 ? (uint64_t)st.st_size : 0;
	vm_unref(vm);
	return 0;
}

int vms_input(struct vms *m, const char *name, const void *buf, size_t len)
{
	struct vm *vm = find(m, name);
	ssize_t n = 0;
	int r = 0;

	if (!vm)
		return -ENOENT;
	mutex_lock(&vm->lock);
	if (vm->in_wr < 0 || vm_done(vm->st.state))
		r = -ENOENT;
	else
		n = write(vm->in_wr, buf, len); /* non-blocking */
	if (r == 0 && n < 0)
		r = errno == EAGAIN ? -EAGAIN : -errno;
	else if (r == 0 && (size_t)n < len)
		r = -EAGAIN; /* the rest did not fit */
	mutex_unlock(&vm->lock);
	vm_unref(vm);
	return r;
}

int vms_vnc_connect(struct vms *m, const char *name, int *ret_fd)
{
	struct vm *vm = find(m, name);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	enum vm_state s;
	int r = 0;

	if (!vm)
		return -ENOENT;
	mutex_lock(&vm->lock);
	s = vm->st.state;
	mutex_unlock(&vm->lock);
	if (s != VM_RUNNING)
		r = -ENOTCONN;
	else if (strlen(vm->vnc) >= sizeof(sa.sun_path))
		r = -ENAMETOOLONG;
	if (r == 0) {
		memcpy(sa.sun_path, vm->vnc, strlen(vm->vnc) + 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			r = -errno;
		else if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			r = errno == ENOENT || errno == ECONNREFUSED ? -EAGAIN
								     : -errno;
	}
	vm_unref(vm);
	if (r < 0)
		return r;
	*ret_fd = steal_fd(&fd);
	return 0;
}

int vms_console_open(struct vms *m, const char *name, struct vm_console **ret)
{
	struct vm *vm = find(m, name);
	struct vm_console *c;

	if (!vm)
		return -ENOENT;
	c = calloc(1, sizeof(*c));
	if (!c) {
		vm_unref(vm);
		return -ENOMEM;
	}
	c->vm = vm;
	c->fd = open(vm->console, O_RDONLY | O_CLOEXEC);
	if (c->fd < 0) {
		int r = -errno;

		vm_console_close(c);
		return r;
	}
	*ret = c;
	return 0;
}

ssize_t vm_console_read(struct vm_console *c, uint64_t off, void *buf,
			size_t len)
{
	ssize_t n = pread(c->fd, buf, len, (off_t)off);
	bool done;

	if (n != 0)
		return n < 0 ? -errno : n;
	mutex_lock(&c->vm->lock);
	done = vm_done(c->vm->st.state);
	mutex_unlock(&c->vm->lock);
	if (!done)
		return 0;
	/* QEMU is gone: what it wrote is all there is. */
	n = pread(c->fd, buf, len, (off_t)off);
	if (n < 0)
		return -errno;
	return n > 0 ? n : -ENODATA;
}

void vm_console_close(struct vm_console *c)
{
	if (!c)
		return;
	if (c->fd >= 0)
		close(c->fd);
	vm_unref(c->vm);
	free(c);
}

void vms_free(struct vms *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		(void)request_stop(m->vm[i], true); /* done ones: -ENOENT */
	for (size_t i = 0; i < m->n; i++) {
		pthread_join(m->vm[i]->thread, NULL);
		vm_unref(m->vm[i]);
	}
	free(m->vm);
	pthread_mutex_destroy(&m->lock);
	free(m->dir);
	free(m->qemu);
	free(m);
}
