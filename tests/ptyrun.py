#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Run a command on a new pseudo-terminal (its controlling terminal, so
# /dev/tty works) and answer its passphrase prompts, as a user would.
#
#   ptyrun.py TRANSCRIPT ANSWER... -- COMMAND [ARGS...]
#
# Each time the output ends with a prompt (a line containing
# "assphrase" and ending in ": "), the next ANSWER and a newline are
# typed (the answer "^C" types the interrupt character instead).  An
# ANSWER "@TEXT:KEYS" is typed instead once TEXT has been shown (e.g.
# "@VMFERRY-BOOT-START:^C": Ctrl-C once the guest started); in KEYS,
# "^X" is the control character of X ("ab^Cc", "^]" for Ctrl-]).
# Everything the terminal showed goes to TRANSCRIPT (so a test can check
# that no answer was echoed), then a line "[ptyrun: echo on]" or
# "[ptyrun: echo off]": the terminal's echo once the command ended.  Exits with the command's status
# (128 + N if a signal N ended it); 124 after $PTYRUN_TIMEOUT seconds
# (default 60).
import os
import pty
import select
import sys
import termios
import time


def keys_bytes(keys):
    """KEYS with each "^X" made the control character of X."""
    out, i = b"", 0
    while i < len(keys):
        if keys[i] == "^" and i + 1 < len(keys):
            out += bytes([ord(keys[i + 1]) & 0x1f])
            i += 2
        else:
            out += keys[i].encode()
            i += 1
    return out


def main():
    args = sys.argv[1:]
    sep = args.index("--")
    transcript, answers, cmd = args[0], args[1:sep], args[sep + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    out = b""
    answered_at = -1
    deadline = time.monotonic() + int(os.environ.get("PTYRUN_TIMEOUT", "60"))
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        if answers and answers[0].startswith("@"):
            text, keys = answers[0][1:].split(":", 1)
            if text.encode() in out:
                answers.pop(0)
                os.write(fd, keys_bytes(keys))
            continue
        last = out.rsplit(b"\n", 1)[-1]
        if (last.endswith(b": ") and b"assphrase" in last
                and answered_at != len(out) and answers):
            answer = answers.pop(0)
            if answer == "^C":
                os.write(fd, b"\x03")
            else:
                os.write(fd, answer.encode() + b"\n")
            answered_at = len(out)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        open(transcript, "wb").write(out)
        sys.exit(124)
    _, status = os.waitpid(pid, 0)
    echo = termios.tcgetattr(fd)[3] & termios.ECHO
    out += b"\n[ptyrun: echo %s]\n" % (b"on" if echo else b"off")
    open(transcript, "wb").write(out)
    if os.WIFSIGNALED(status):
        sys.exit(128 + os.WTERMSIG(status))
    sys.exit(os.WEXITSTATUS(status))


main()
