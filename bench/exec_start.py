"""coffer exec start-up: the time from starting `coffer exec` with N references to its child
running, measured as the wall time of `coffer exec -- /bin/true` (an upper bound: it includes
the child's whole life and exec's exit). Compared in the same run with the same command with
no references, and with /bin/true started directly.

Usage: python3 bench/exec_start.py COFFER_BIN [N=20] [RUNS=30]
Needs the server's dev.env in the environment (bench/run.sh sources it); sets N secrets in the
dev vault. Loopback only.
"""
import os
import statistics
import subprocess
import sys
import time


def timed(argv, env, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
        times.append((time.perf_counter() - t0) * 1000)
        if r.returncode != 0:
            raise SystemExit(f"{argv[:2]} exited {r.returncode}: {r.stderr[-400:]!r}")
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1 if len(times) >= 100 else -1]


def main():
    coffer = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    base_env = dict(os.environ)
    refs = {}
    for i in range(n):
        name = f"exec-bench-{i}"
        subprocess.run([coffer, "keyvault", "secret", "set", "--vault-name", "dev", "--name", name,
                        "--value", f"value-{i}"], check=True, stdout=subprocess.DEVNULL)
        # Half in each form, as an app's settings would mix them.
        refs[f"REF_{i}"] = (f"@Microsoft.KeyVault(VaultName=dev;SecretName={name})" if i % 2 else
                            f"@Microsoft.KeyVault(SecretUri={os.environ['COFFER_VAULT_URL']}"
                            f"/secrets/{name})")
    with_refs = dict(base_env, **refs)
    # Check once that the child really gets the values.
    out = subprocess.run([coffer, "exec", "--", "/bin/sh", "-c", 'printf %s "$REF_0"'],
                         env=with_refs, capture_output=True, text=True, check=True).stdout
    if out != "value-0":
        raise SystemExit(f"the child saw {out!r}, not the secret's value")
    for label, argv, env in (
            ("/bin/true directly", ["/bin/true"], base_env),
            ("coffer exec, no references", [coffer, "exec", "--", "/bin/true"], base_env),
            (f"coffer exec, {n} references", [coffer, "exec", "--", "/bin/true"], with_refs)):
        timed(argv, env, 3)  # warm up
        p50, worst = timed(argv, env, runs)
        print(f"{label}: p50 {p50:.1f} ms, max {worst:.1f} ms over {runs} runs")


if __name__ == "__main__":
    main()
