"""The child program test_exec.py runs under `coffer exec` (standard library only).

    exec_child.py LOG [--vars A,B,...] [--mode run|exit|kill] [--code N] [--signal N]
                      [--term-code N] [--lifetime S]

On start it installs its signal handlers, then appends one JSON line to LOG:
    {"event": "start", "pid": ..., "ppid": ..., "env": {"A": value or null, ...}}
Each signal it receives appends {"event": "signal", "pid": ..., "signal": "SIGHUP"}.

--mode run (the default) waits for signals; SIGTERM exits with --term-code. It gives up by
itself after --lifetime seconds (exit 3), so that it can never outlive a broken test for long.
--mode exit exits at once with --code; --mode kill kills itself with signal --signal.
Every line is one write(2) on an O_APPEND descriptor, so lines never interleave.
"""

import argparse
import json
import os
import signal
import sys
import time

HANDLED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGTERM",
           "SIGALRM", "SIGCONT")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("--vars", default="")
    parser.add_argument("--mode", choices=("run", "exit", "kill"), default="run")
    parser.add_argument("--code", type=int, default=0)
    parser.add_argument("--signal", type=int, default=int(signal.SIGKILL))
    parser.add_argument("--term-code", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=300.0)
    args = parser.parse_args()

    fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def emit(record):
        record["pid"] = os.getpid()
        os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode("utf-8",
                                                                       "surrogateescape"))

    def on_signal(signum, _frame):
        emit({"event": "signal", "signal": signal.Signals(signum).name})
        if signum == signal.SIGTERM:
            os.close(fd)
            os._exit(args.term_code)

    if args.mode == "run":
        for name in HANDLED:
            signal.signal(getattr(signal, name), on_signal)

    names = [n for n in args.vars.split(",") if n]
    env = {}
    for n in names:
        raw = os.environb.get(n.encode())
        env[n] = None if raw is None else raw.decode("utf-8", "surrogateescape")
    emit({"event": "start", "ppid": os.getppid(), "env": env})

    if args.mode == "exit":
        os.close(fd)
        sys.stdout.flush()
        os._exit(args.code)
    if args.mode == "kill":
        os.close(fd)
        if args.signal not in (signal.SIGKILL, signal.SIGSTOP):  # those cannot be caught
            signal.signal(args.signal, signal.SIG_DFL)
        os.kill(os.getpid(), args.signal)
        time.sleep(5)
        os._exit(99)  # the signal did not end it

    deadline = time.monotonic() + args.lifetime
    while time.monotonic() < deadline:
        time.sleep(0.5)
    emit({"event": "lifetime-exceeded"})
    os._exit(3)


if __name__ == "__main__":
    main()
