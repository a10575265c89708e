/* SPDX-License-Identifier: MIT */
/* `vmferry run --remote`: the VM on the server, its console here.
 *
 * Starts the VM (or, if it already runs there, attaches to it), then
 * follows its console (console.h) until it has ended, asking again from
 * where it got to whenever the server ends an answer early.  stdin goes
 * to the VM's serial console, a read at a time, from a thread of its own
 * (with its own fetch engine).  SIGINT, SIGTERM and SIGHUP detach: the
 * VM goes on running on the server.
 *
 * When stdin is a terminal it is raw while attached (term.h): every key
 * goes to the guest as typed, Ctrl-C included; what is typed while a
 * POST is on its way is sent by the next one, all at once.  Ctrl-]
 * detaches.  The terminal's settings come back on every way out (the
 * end of run_remote(), and exit()).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "thread.h"

#include "../fusefs/crypto.h"
#include "../fusefs/fetch.h"
#include "../fusefs/remote_vm.h"
#include "console.h"
#include "run.h"
#include "term.h"

/* Set by a signal, or by the input thread on the detach key: the
 * follower polls it (console_follow()'s progress callback). */
static volatile atomic_int detach; /* atomic: the input thread sets it too */

static void on_signal(int sig)
{
	detach = sig;
}

struct input {
	struct run_opts *ro;
	bool raw; /* stdin is a raw terminal: watch for the detach key */
};

/* Send buf to the VM's console, retrying while its input is full. */
static void send_input(struct fetch *f, const char *name, const char *buf,
		       size_t len)
{
	char why[256];

	if (!len)
		return;
	while (remote_vm_input(f, name, buf, len, why) == -EAGAIN)
		usleep(100000);
}

/* stdin to the VM's console until EOF or the VM is gone. */
static void *input_main(void *opaque)
{
	struct input *in = opaque;
	struct fetch *f = NULL;
	char *token = NULL, buf[4096], *key;
	ssize_t n;

	if (run_connect(in->ro, &f, &token) < 0)
		return NULL;
	for (;;) {
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		key = in->raw ? memchr(buf, TERM_DETACH_KEY, (size_t)n) : NULL;
		send_input(f, in->ro->u.name, buf,
			   key ? (size_t)(key - buf) : (size_t)n);
		if (key) {
			detach = TERM_DETACH_KEY;
			break;
		}
	}
	fetch_free(f);
	crypto_cleanse(token, strlen(token));
	free(token);
	return NULL;
}

/* Start it, or find it running there.  0, or the exit status. */
static int start(struct run_opts *ro, struct fetch *f, struct remote_vm *vm,
		 const char *key)
{
	char why[256];
	int r = remote_vm_start(f, ro->u.name, vm, why);

	if (r == 0) {
		log_info("%s: running on the server from version %" PRIu64
			 " (%s detaches; `vmferry stop %s` stops it)",
			 ro->u.name, vm->base, key, ro->url);
		return 0;
	}
	if (r == -EBUSY && remote_vm_state(f, ro->u.name, vm, why) == 0 &&
	    !remote_vm_done(vm) && strcmp(vm->state, "none") != 0) {
		log_info("%s: already running on the server: its console "
			 "follows (%s detaches)",
			 ro->u.name, key);
		return 0;
	}
	if (r == -EBUSY)
		log_error("%s: cannot run it on the server: %s", ro->url, why);
	else if (r == -EACCES)
		log_error("%s: the token may not run this image on the server "
			  "(it needs the run grant: vmferry-server token add "
			  "--run %s)",
			  ro->url, ro->u.name);
	else if (r == -ENOENT)
		log_error("%s: no image \"%s\" on %s", ro->url, ro->u.name,
			  ro->u.base);
	else if (r == -ENOEXEC)
		log_error("%s: %s", ro->url, why);
	else
		log_error("%s: %s (%s)", ro->url, remote_strerror(r), why);
	return 1;
}

/* Follow the console until the VM has ended; its exit status. */
static int follow(struct run_opts *ro, struct fetch *f, const char *token)
{
	struct remote_vm vm;
	uint64_t off = 0;
	char why[256];
	int r, fails = 0;

	for (;;) {
		r = console_follow(&ro->o, ro->u.base, token, ro->u.name, &off,
				   &detach, why);
		if (r == -EINTR || detach) {
			log_info("%s: detached; the VM goes on running on the "
				 "server (`vmferry run %s --remote` shows its "
				 "console again, `vmferry stop %s` stops it)",
				 ro->u.name, ro->url, ro->url);
			return 0;
		}
		if (r < 0 && ++fails > 10) {
			log_error("%s: the console: %s", ro->url, why);
			return 1;
		}
		if (r < 0)
			sleep(1);
		if (remote_vm_state(f, ro->u.name, &vm, why) < 0)
			continue;
		if (remote_vm_done(&vm) && off >= vm.console_size)
			break;
	}
	if (strcmp(vm.state, "failed") == 0) {
		log_error("%s: the VM on the server failed: %s", ro->url,
			  vm.error);
		return 1;
	}
	if (vm.unchanged)
		log_info("%s: the VM on the server stopped; its disk is "
			 "unchanged: no new version (still %" PRIu64 ")",
			 ro->u.name, vm.version);
	else
		log_info("%s: the VM on the server stopped; its disk is "
			 "version %" PRIu64,
			 ro->u.name, vm.version);
	return 0;
}

int run_remote(struct run_opts *ro)
{
	struct sigaction sa = {.sa_handler = on_signal};
	struct input in = {.ro = ro, .raw = isatty(STDIN_FILENO)};
	struct fetch *f = NULL;
	struct remote_vm vm;
	char *token = NULL;
	pthread_t t;
	int status;

	if (run_connect(ro, &f, &token) < 0)
		return 1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	status = start(ro, f, &vm, in.raw ? "Ctrl-]" : "Ctrl-C");
	if (status == 0 && in.raw) {
		in.raw = term_raw(STDIN_FILENO);
		if (in.raw)
			log_info("%s: attached to the console: keys go to the "
				 "VM as typed (Ctrl-C too); Ctrl-] detaches",
				 ro->u.name);
	}
	if (status == 0) {
		/* Detached: it ends with the process (blocked in read()). */
		if (thread_start(&t, input_main, &in, "input") == 0)
			pthread_detach(t);
		status = follow(ro, f, token);
	}
	term_restore();
	fetch_free(f);
	crypto_cleanse(token, strlen(token));
	free(token);
	return status;
}
