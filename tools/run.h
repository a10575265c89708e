/* SPDX-License-Identifier: MIT */
/* `vmferry run`: what its parts share.  cmd-run.c parses the options
 * and finds the image; run-local.c runs it here; run-remote.c on the
 * server.  One thread (the command's). */
#ifndef VMFERRY_RUN_H
#define VMFERRY_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "../fusefs/remote.h"
#include "toolopts.h"

struct run_opts {
	struct tool_opts o;
	bool local, remote;
	bool ephemeral, keep;
	uint64_t memory_mib;  /* 0: the image's, else the default */
	unsigned cpus;	      /* 0: the image's, else the default */
	const char *display;  /* NULL: serial console on the terminal */
	const char *qemu;     /* binary name or path */
	const char *accel;    /* "auto", "kvm", "tcg" */
	const char *server;   /* --server, else $VMFERRY_SERVER */
	const char *log;      /* the mount's log file */
	const char *compress; /* --compress for the mount; NULL: default */
	uint64_t shutdown_timeout_s;
	const char *url; /* the image's URL, resolved */
	struct remote_url u;
};

/* NAME or URL (arg) -> ro->url (in buf, room for len) and ro->u: a URL
 * as given; a NAME on ro->server or $VMFERRY_SERVER; else the one local
 * copy of that name under ro->o.cache.  0, or 2 after saying why. */
int run_resolve(struct run_opts *ro, const char *arg, char *buf, size_t len);

/* Open a fetch engine for the image's server with the options' TLS
 * settings and token (which *ret_token receives; the caller cleanses and
 * frees it).  0 or -errno, said in the user's terms. */
struct fetch;
int run_connect(struct run_opts *ro, struct fetch **ret, char **ret_token);

/* "image NAME is leased to HOLDER (WHERE) since TIME until TIME": the
 * server's own sentence for a lease conflict (protocol.md), into buf. */
void run_describe_lease(const struct remote_image *img, const char *name,
			char *buf, size_t len);

/* The run itself; exit statuses as commands.h. */
int run_local(struct run_opts *ro);
int run_remote(struct run_opts *ro);

#endif
