/* SPDX-License-Identifier: MIT */
/* `vmferry export URL DIR`: write a version as files for plain servers.
 *
 * Reads the version from vmferry-server over HTTPS with the token (the
 * manifest whole, then the non-zero blocks in runs of up to
 * EXPORT_RUN_BLOCKS, each block checked against the manifest before it
 * is written) and writes DIR/NAME/ in the layout of docs/protocol.md,
 * "Plain servers":
 *
 *   DIR/NAME/N/data       the flat image (sparse: zero blocks are holes)
 *   DIR/NAME/N/manifest   the version's manifest, as the server has it
 *   DIR/NAME/vmferry.json the descriptor, naming N's files
 *
 * The data and manifest land under temporary names and are renamed
 * into place after fsync; the descriptor is replaced last and
 * atomically, so a server's readers see the previous version or this
 * one whole, never a mix.  One thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cleanup.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "manifest.h"
#include "progress.h"
#include "util.h"

#include "../fusefs/crypto.h"
#include "../fusefs/fetch.h"
#include "../fusefs/remote.h"
#include "../fusefs/upload.h"
#include "commands.h"
#include "toolopts.h"

#define EXPORT_RUN_BLOCKS   64u		 /* 4 MiB per request at 64 KiB */
#define EXPORT_MANIFEST_MAX (1ull << 30) /* as the mount accepts */

struct export
{
	struct fetch *fetch;
	struct remote_url url;
	uint64_t version;
	struct manifest_header hdr;
	uint8_t *manifest; /* whole */
	size_t manifest_len;
	uint8_t *buf;	/* EXPORT_RUN_BLOCKS blocks */
	char dir[4096]; /* DIR/NAME */
	uint64_t n_zero, bytes;
};

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: vmferry export [OPTIONS] https://HOST:PORT/NAME DIR\n"
	    "\n"
	    "Write a version of NAME as plain files under DIR/NAME/ (N/data,\n"
	    "N/manifest, vmferry.json), so that any static HTTPS server, CDN\n"
	    "or FTP server can serve it.  The version is read from\n"
	    "vmferry-server over HTTPS with a token that may read NAME (as a\n"
	    "mount reads it), so export runs wherever a client can, e.g. on\n"
	    "the web server.  Every block is checked against the manifest\n"
	    "before it is written; zero blocks are holes.\n"
	    "\n"
	    "Exporting another version into the same DIR adds N/ and switches\n"
	    "vmferry.json to it atomically (old N/ stay for mounts still\n"
	    "reading them: delete them when those are gone).  Mount the\n"
	    "result read-only with\n"
	    "  vmferry mount https://WEB/PATH/NAME/vmferry.json MOUNTPOINT\n"
	    "(over ftp:// or http:// add --manifest-sha256, printed here).\n"
	    "\n"
	    "      --version N        this version (default: the current one)\n"
	    "      --token-file FILE  bearer token with read on NAME (default:\n"
	    "                         $VMFERRY_TOKEN)\n"
	    "      --cacert FILE      trust this CA or self-signed certificate\n"
	    "      --pin-sha256 B64   also require this server public key\n"
	    "      --insecure         do not verify the server (loudly)\n"
	    "  -h, --help             this help\n");
}

static int export_opt(int c, const char *arg, void *opaque)
{
	uint64_t *version = opaque;

	if (c == 256 && parse_u64(arg, version) == 0 && *version > 0)
		return 0;
	log_error("--version: invalid value \"%s\"", arg);
	return 2;
}

static int manifest_error(const struct export *e, int r,
			  const struct fetch_req *req)
{
	return log_error_errno(r, "%s version %" PRIu64 ": manifest: %s%s%s",
			       e->url.name, e->version, remote_strerror(r),
			       req->errmsg[0] ? ": " : "", req->errmsg);
}

/* The version's manifest, whole: its header first (for its length). */
static int get_manifest(struct export *e)
{
	uint8_t head[MANIFEST_HEADER_SIZE];
	struct fetch_req req = {0};
	char path[256];
	uint64_t len;
	int r;

	remote_manifest_path(e->url.name, e->version, path, sizeof(path));
	req.path = path;
	req.len = sizeof(head);
	req.buf = head;
	req.buf_len = sizeof(head);
	req.prio = FETCH_PRIO_DEMAND;
	r = fetch_run(e->fetch, &req);
	if (r == 0 && manifest_header_parse(head, sizeof(head), &e->hdr) < 0)
		r = -EBADMSG;
	len = r == 0 ? manifest_encoded_size(&e->hdr) : 0;
	if (r == 0 &&
	    (len > EXPORT_MANIFEST_MAX || e->hdr.version != e->version))
		r = -EBADMSG;
	if (r < 0)
		return manifest_error(e, r, &req);
	e->manifest_len = (size_t)len;
	e->manifest = malloc(e->manifest_len);
	if (!e->manifest)
		return log_oom();
	memset(&req, 0, sizeof(req));
	req.path = path;
	req.buf = e->manifest;
	req.buf_len = e->manifest_len;
	req.prio = FETCH_PRIO_DEMAND;
	r = fetch_run(e->fetch, &req);
	if (r == 0 && (req.got != e->manifest_len ||
		       memcmp(e->manifest, head, sizeof(head)) != 0))
		r = -EBADMSG;
	if (r < 0)
		return manifest_error(e, r, &req);
	return 0;
}

static const uint8_t *block_hash(const struct export *e, uint64_t b)
{
	return e->manifest + manifest_entry_offset(b);
}

/* Fetch blocks [first, first + n), all non-zero, check each and write
 * them at their place in fd. */
static int copy_run(struct export *e, int fd, uint64_t first, uint32_t n,
		    uint8_t *buf)
{
	char path[256];
	struct fetch_req req = {0};
	uint32_t bs = e->hdr.block_size;
	uint64_t off = first * bs, len = 0;
	uint8_t h[VMF_HASH_LEN];
	int r;

	for (uint32_t i = 0; i < n; i++)
		len += manifest_block_len(&e->hdr, first + i);
	remote_data_path(e->url.name, e->version, path, sizeof(path));
	req.path = path;
	req.off = off;
	req.len = len;
	req.buf = buf;
	req.buf_len = len;
	req.prio = FETCH_PRIO_DEMAND;
	r = fetch_run(e->fetch, &req);
	if (r < 0)
		return log_error_errno(
		    r, "%s: blocks %" PRIu64 "-%" PRIu64 ": %s", e->url.name,
		    first, first + n - 1, req.errmsg);
	for (uint32_t i = 0; i < n; i++) {
		hash_sha256(buf + (size_t)i * bs,
			    manifest_block_len(&e->hdr, first + i), h);
		if (memcmp(h, block_hash(e, first + i), VMF_HASH_LEN) != 0) {
			log_error("%s: block %" PRIu64 " does not match the "
				  "manifest: nothing exported",
				  e->url.name, first + i);
			return -EBADMSG;
		}
	}
	r = full_pwrite(fd, buf, (size_t)len, (off_t)off);
	if (r < 0)
		return log_error_errno(r, "writing %s: %m", e->dir);
	e->bytes += len;
	return 0;
}

/* DIR/NAME/N/data: the flat image, zero blocks left as holes. */
static int write_data(struct export *e, const char *tmp)
{
	_cleanup_close_ int fd = -1;
	struct progress bar;
	uint64_t b = 0;
	int r;

	e->buf = malloc((size_t)EXPORT_RUN_BLOCKS * e->hdr.block_size);
	if (!e->buf)
		return log_oom();
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)e->hdr.image_size) < 0)
		return log_error_errno(-errno, "%s: %m", tmp);
	progress_init(&bar, "export", e->hdr.image_size);
	while (b < e->hdr.nblocks) {
		uint32_t n = 0;

		if (hash_is_zero(block_hash(e, b))) {
			e->n_zero++;
			b++;
			continue;
		}
		while (n < EXPORT_RUN_BLOCKS && b + n < e->hdr.nblocks &&
		       !hash_is_zero(block_hash(e, b + n)))
			n++;
		r = copy_run(e, fd, b, n, e->buf);
		if (r < 0)
			return r;
		b += n;
		progress_update(&bar, b * e->hdr.block_size);
	}
	progress_finish(&bar, e->hdr.image_size);
	if (fsync(fd) < 0)
		return log_error_errno(-errno, "%s: %m", tmp);
	return 0;
}

/* DIR/NAME/vmferry.json, the last thing written. */
static int write_descriptor(struct export *e, char *ret_hex)
{
	uint8_t sum[VMF_HASH_LEN];
	char path[4200], data[64], man[64];
	_cleanup_free_ char *text = NULL, *line = NULL;
	json_t *o;
	int r;

	hash_sha256(e->manifest, e->manifest_len, sum);
	hash_to_hex(sum, sizeof(sum), ret_hex);
	snprintf(data, sizeof(data), "%" PRIu64 "/" VMF_EXPORT_DATA,
		 e->version);
	snprintf(man, sizeof(man), "%" PRIu64 "/" VMF_EXPORT_MANIFEST,
		 e->version);
	o = json_pack("{s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:s}",
		      "vmferry_export", VMF_EXPORT_FORMAT, "name", e->url.name,
		      "version", (json_int_t)e->version, "size",
		      (json_int_t)e->hdr.image_size, "block_size",
		      (json_int_t)e->hdr.block_size, "blocks",
		      (json_int_t)e->hdr.nblocks, "manifest_size",
		      (json_int_t)e->manifest_len, "manifest_sha256", ret_hex,
		      "data", data, "manifest", man);
	if (o)
		text = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text)
		return log_oom();
	snprintf(path, sizeof(path), "%s/" VMF_EXPORT_DESCRIPTOR, e->dir);
	/* json_dumps leaves no newline; the file ends with one. */
	line = malloc(strlen(text) + 2);
	if (!line)
		return log_oom();
	snprintf(line, strlen(text) + 2, "%s\n", text);
	r = write_file_atomic(path, line, strlen(line), 0644);
	if (r < 0)
		return log_error_errno(r, "%s: %m", path);
	return 0;
}

static int export_files(struct export *e, char *ret_hex)
{
	char vdir[4200], tmp[4300], final[4300];
	int r;

	snprintf(vdir, sizeof(vdir), "%s/%" PRIu64, e->dir, e->version);
	r = mkdir_p(vdir, 0755);
	if (r < 0)
		return log_error_errno(r, "%s: %m", vdir);
	snprintf(tmp, sizeof(tmp), "%s/." VMF_EXPORT_DATA ".tmp", vdir);
	snprintf(final, sizeof(final), "%s/" VMF_EXPORT_DATA, vdir);
	r = write_data(e, tmp);
	if (r == 0 && rename(tmp, final) < 0)
		r = log_error_errno(-errno, "%s: %m", final);
	if (r < 0) {
		(void)unlink(tmp); /* a partial file helps nobody */
		return r;
	}
	snprintf(final, sizeof(final), "%s/" VMF_EXPORT_MANIFEST, vdir);
	r = write_file_atomic(final, e->manifest, e->manifest_len, 0644);
	if (r < 0)
		return log_error_errno(r, "%s: %m", final);
	return write_descriptor(e, ret_hex);
}

int cmd_export(int argc, char **argv)
{
	static const struct option own[] = {
	    {"version", required_argument, NULL, 256},
	    {NULL, 0, NULL, 0},
	};
	struct tool_opts o = {.want = TOOL_OPT_SERVER};
	struct export e = {0};
	struct fetch_config cfg = {0};
	struct remote_image img;
	_cleanup_free_ char *token = NULL;
	char errbuf[256], hex[VMF_HASH_HEX_LEN + 1], size[32];
	int r, status = 1;

	r = tool_parse(argc, argv, &o, own, export_opt, &e.version, usage);
	if (r >= 0)
		return r;
	if (argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (tool_image_url(&o, argv[optind], &cfg, &e.url))
		return 2;
	r = snprintf(e.dir, sizeof(e.dir), "%s/%s", argv[optind + 1],
		     e.url.name);
	if (r < 0 || (size_t)r >= sizeof(e.dir)) {
		log_error("%s: path too long", argv[optind + 1]);
		return 2;
	}
	if (tool_read_token(&o, &token) < 0)
		return 1;
	r = upload_fetch_new(&cfg, e.url.base, token, &e.fetch);
	if (r < 0) {
		log_error_errno(r, "starting the fetch engine: %m");
		goto out;
	}
	r = remote_get_image(e.fetch, e.url.name, &img, errbuf);
	if (r < 0) {
		log_error("%s: %s (%s)", argv[optind], remote_strerror(r),
			  errbuf);
		goto out;
	}
	if (!e.version)
		e.version = img.version;
	if (get_manifest(&e) < 0 || export_files(&e, hex) < 0)
		goto out;
	format_bytes(e.hdr.image_size, size, sizeof(size));
	printf("exported %s version %" PRIu64 " (%s, %" PRIu64
	       " blocks of which %" PRIu64 " zero) to %s\n"
	       "manifest sha256: %s\n"
	       "serve %s/ as .../%s/ and mount "
	       ".../%s/" VMF_EXPORT_DESCRIPTOR
	       " (over ftp:// or http://, with --manifest-sha256 %s)\n",
	       e.url.name, e.version, size, e.hdr.nblocks, e.n_zero, e.dir, hex,
	       e.dir, e.url.name, e.url.name, hex);
	status = 0;
out:
	fetch_free(e.fetch);
	free(e.manifest);
	free(e.buf);
	if (token)
		crypto_cleanse(token, strlen(token));
	return status;
}
