/* SPDX-License-Identifier: MIT */
/* The options the client tools share, parsed in one place: where the
 * copies live (--cache), what opens a copy (--key-file, --passphrase,
 * --passphrase-file) and how to reach the server (--token-file,
 * --cacert, --pin-sha256, --insecure).  A tool names the groups it takes
 * and hands its own options to tool_parse().  One thread (the tool's). */
#ifndef VMFERRY_TOOLOPTS_H
#define VMFERRY_TOOLOPTS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "../fusefs/local.h"

struct fetch_config;

#define TOOL_OPT_CACHE 1u /* --cache DIR */
#define TOOL_OPT_KEYS  2u /* --key-file, --passphrase[-file] */
#define TOOL_OPT_SERVER \
	4u /* --token-file, --cacert, --pin-sha256, --insecure */

struct tool_opts {
	unsigned want; /* TOOL_OPT_* groups the tool takes */
	const char *cache;
	struct local_key_opts keys;
	const char *token_file;
	const char *cacert;
	const char *pin; /* base64 SHA-256 of the server's public key */
	bool insecure;
	char pin_buf[128]; /* "sha256//" + pin, for fetch_config */
};

/* A tool's own option (c: its val in extra, arg: optarg or NULL).  0, or
 * 2 for a usage error it has reported. */
typedef int (*tool_opt_fn)(int c, const char *arg, void *opaque);

/* Parse argv with getopt_long: the groups in o->want, extra (the tool's
 * own options, vals from 256 to 999; may be NULL) and --help.  Returns
 * -1 to go on (optind at the first operand), 0 after --help (usage
 * printed on stdout) or 2 after a usage error (usage on stderr).  Also
 * refuses two ways of giving a key, and prints the --insecure warning. */
int tool_parse(int argc, char **argv, struct tool_opts *o,
	       const struct option *extra, tool_opt_fn own, void *opaque,
	       void (*usage)(FILE *out));

/* cfg's TLS settings from o (cacert, pin, insecure); cfg borrows o. */
void tool_fetch_config(struct tool_opts *o, struct fetch_config *cfg);

/* A libcurl easy handle's TLS settings from o (https only; --cacert,
 * --pin-sha256, --insecure), for the tools that use libcurl directly
 * rather than the fetch engine (console.c, cmd-vnc.c). */
void tool_curl_tls(const struct tool_opts *o, void *curl_easy);

/* The image URL operand arg into *url (saying what is wrong with it),
 * and cfg's TLS settings from o.  0, or 2 (a usage error). */
int tool_image_url(struct tool_opts *o, const char *arg,
		   struct fetch_config *cfg, struct remote_url *url);

/* The bearer token (--token-file, else $VMFERRY_TOKEN) into a new string
 * (the caller cleanses and frees it).  0, or -errno after saying what is
 * wrong in the user's terms. */
int tool_read_token(const struct tool_opts *o, char **ret);

/* A fetch engine for the server at base ("https://HOST:PORT") with o's
 * TLS settings and token (which *ret_token receives: the caller
 * cleanses and frees it; the engine keeps its own copy).  0, or -errno
 * after saying what is wrong in the user's terms. */
int tool_connect(struct tool_opts *o, const char *base, struct fetch **ret,
		 char **ret_token);

#endif
