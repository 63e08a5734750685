"""Whole-process benchmark, run by scripts/bench.

Against one local moto server, each pass seeds fresh users (each with a virtual
MFA device) and times, side by side, the seed MFA recovery done by:
  (a) the five AWS CLI commands, (b) one boto3 script making the five calls,
  (c) `runbook run mfa-recovery --user U --yes`, (d) the raw aws-sdk-iam floor,
  (e) `runbook run runbooks/python/mfa-recovery ...`, the Python runbook
      (built and compiled once, in the warm-up pass: a warm cached start).
Then, offline: `runbook replay` of the seed fixture with a warm and a cold
compiled-component cache, and peak memory; and for the Python runbook, its
component's size, a componentize-py build and a cold and a warm replay.
Prints medians and ratios.
Both binaries are timed as installed: copied into a directory of their own, as
`cargo install` copies them. A binary the linker has just written maps into a
process measurably slower (the page cache holds it in small pages; measured
here: about 1 ms a run for a 250 MB `runbook`), which would charge the larger
binary for how it was built rather than for what it does.
Benchmarks report; they never fail on a figure.
"""

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSES = int(os.environ.get("BENCH_PASSES", "15"))
RUNBOOK = os.path.join(ROOT, "target/release/runbook")
RAW = os.path.join(ROOT, "target/release/examples/raw_iam")
AWS = os.path.join(ROOT, ".venv-bench/bin/aws")
PY = os.path.join(ROOT, ".venv-bench/bin/python")
MOTO = os.path.join(ROOT, ".venv/bin/moto_server")
SEED_FIXTURE = os.path.join(ROOT, "tests/fixtures/seed-case/journal.jsonl")
PY_MFA = os.path.join(ROOT, "runbooks/python/mfa-recovery")

BOTO3_SCRIPT = """
import sys, boto3
user, url = sys.argv[1], sys.argv[2]
iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1")
devices = iam.list_mfa_devices(UserName=user)["MFADevices"]
for d in devices:
    iam.deactivate_mfa_device(UserName=user, SerialNumber=d["SerialNumber"])
assert not iam.list_mfa_devices(UserName=user)["MFADevices"]
unassigned = {v["SerialNumber"] for v in iam.list_virtual_mfa_devices(AssignmentStatus="Unassigned")["VirtualMFADevices"]}
for d in devices:
    if d["SerialNumber"] in unassigned:
        iam.delete_virtual_mfa_device(SerialNumber=d["SerialNumber"])
"""

ENV = dict(
    os.environ,
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_REGION="us-east-1",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_CONFIG_FILE="/nonexistent",
    AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
    AWS_EC2_METADATA_DISABLED="true",
    AWS_PAGER="",
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd, env=ENV):
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def peak_kib(cmd, env):
    """Peak RSS of one run, via GNU time."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, env=env, check=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return int(out.stderr.strip().splitlines()[-1])


def ms(seconds):
    return f"{seconds * 1000:8.1f} ms"


def python_figures(env_warm):
    """The Python runbook: its size, a build from scratch (a copy of it
    outside the checkout, with the checkout's componentize-py), and replays
    of the seed fixture with a cold and a warm compiled-component cache."""
    target = os.path.join(ROOT, "target")
    built = sorted(
        (os.path.join(target, "python", f) for f in os.listdir(os.path.join(target, "python"))
         if f.startswith("mfa-recovery-") and f.endswith(".wasm")),
        key=os.path.getmtime)[-1]
    rust = os.path.join(target, "wasm32-wasip2/release/mfa_recovery.wasm")
    scratch = tempfile.mkdtemp()
    copy = os.path.join(scratch, "mfa-recovery")
    shutil.copytree(PY_MFA, copy)
    # Its own cache directory: the copy is built (not found built).
    env_build = dict(env_warm, XDG_CACHE_HOME=os.path.join(scratch, "cache"),
                     RUNBOOK_COMPONENTIZE_PY=os.path.join(
                         target, "componentize-py-0.25.1/bin/componentize-py"))
    builds = []
    for _ in range(3):
        shutil.rmtree(os.path.join(scratch, "cache"), ignore_errors=True)
        builds.append(timed([RUNBOOK, "inspect", copy], env_build))
    shutil.rmtree(scratch)
    replay = [RUNBOOK, "replay", SEED_FIXTURE, "--runbook", PY_MFA]
    cold = []
    for _ in range(3):
        d = tempfile.mkdtemp()
        cold.append(timed(replay, dict(ENV, RUNBOOK_CACHE_DIR=d)))
        shutil.rmtree(d)
    timed(replay, env_warm)
    warm = [timed(replay, env_warm) for _ in range(PASSES)]
    return {
        "size": os.path.getsize(built), "rust_size": os.path.getsize(rust),
        "build": statistics.median(builds), "cold": statistics.median(cold),
        "warm": statistics.median(warm), "peak": peak_kib(replay, env_warm),
    }


def install(binaries):
    """Copy each binary into a fresh directory, as an install does."""
    where = tempfile.mkdtemp()
    return where, [shutil.copy2(b, where) for b in binaries]


def main():
    global RUNBOOK, RAW
    installed, (RUNBOOK, RAW) = install([RUNBOOK, RAW])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("moto did not start")
                time.sleep(0.05)
        sys.path.insert(0, "")
        import boto3  # from .venv-bench, which runs this script

        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")

        def seed(user):
            iam.create_user(UserName=user)
            serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=user)["VirtualMFADevice"]["SerialNumber"]
            iam.enable_mfa_device(UserName=user, SerialNumber=serial,
                                  AuthenticationCode1="123456", AuthenticationCode2="654321")
            return serial

        def check_recovered(user):
            assert not iam.list_mfa_devices(UserName=user)["MFADevices"], user

        journals = tempfile.mkdtemp()
        boto3_script = os.path.join(journals, "recover.py")
        with open(boto3_script, "w") as f:
            f.write(BOTO3_SCRIPT)

        def aws_cli(user):
            serial = seed(user)
            start = time.perf_counter()
            for args in (
                ["list-mfa-devices", "--user-name", user],
                ["deactivate-mfa-device", "--user-name", user, "--serial-number", serial],
                ["list-mfa-devices", "--user-name", user],
                ["list-virtual-mfa-devices", "--assignment-status", "Unassigned"],
                ["delete-virtual-mfa-device", "--serial-number", serial],
            ):
                subprocess.run([AWS, "iam", "--endpoint-url", url] + args, env=ENV, check=True,
                               stdout=subprocess.DEVNULL)
            return time.perf_counter() - start

        variants = {
            "a": ("aws CLI, 5 commands", aws_cli),
            "b": ("boto3 script", lambda u: (seed(u), timed([PY, boto3_script, u, url]))[1]),
            "c": ("runbook run", lambda u: (seed(u), timed(
                [RUNBOOK, "run", "mfa-recovery", "--user", u, "--yes", "--endpoint-url", url,
                 "--journal", os.path.join(journals, u + ".jsonl")]))[1]),
            "d": ("raw aws-sdk-iam (floor)", lambda u: (seed(u), timed([RAW, u, url]))[1]),
            "e": ("runbook run, Python", lambda u: (seed(u), timed(
                [RUNBOOK, "run", PY_MFA, "--user", u, "--yes", "--endpoint-url", url,
                 "--journal", os.path.join(journals, u + ".jsonl")]))[1]),
        }
        # Warm-up: page caches, the compiled-component cache.
        for key, (_, fn) in variants.items():
            fn(f"warm-{key}")
        times = {k: [] for k in variants}
        for i in range(PASSES):
            for key, (_, fn) in variants.items():
                user = f"bench-{i}-{key}"
                times[key].append(fn(user))
                check_recovered(user)
        med = {k: statistics.median(v) for k, v in times.items()}

        print(f"\nwhole process against moto on loopback, {PASSES} passes, medians:")
        for key, (name, _) in variants.items():
            print(f"  ({key}) {name:<26} {ms(med[key])}")
        print("ratios:")
        print(f"  a/c  aws CLI / runbook     {med['a'] / med['c']:6.1f}x  (target >= 100x)")
        print(f"  a/d  aws CLI / raw SDK     {med['a'] / med['d']:6.1f}x  (the floor's own: a/c is at most this)")
        print(f"  b/c  boto3 / runbook       {med['b'] / med['c']:6.1f}x  (target >= 10x)")
        print(f"  c/d  runbook / raw SDK     {med['c'] / med['d']:6.2f}x  (target <= 1.2x)")
        print(f"  e/c  Python / Rust runbook {med['e'] / med['c']:6.2f}x  (target <= 3x)")
        print(f"  a/e  aws CLI / Python      {med['a'] / med['e']:6.1f}x  (target >= 20x)")

        # Offline replay: warm and cold compiled-component cache.
        warm_dir = tempfile.mkdtemp()
        replay = [RUNBOOK, "replay", SEED_FIXTURE, "--runbook", "mfa-recovery"]
        env_warm = dict(ENV, RUNBOOK_CACHE_DIR=warm_dir)
        timed(replay, env_warm)
        warm = [timed(replay, env_warm) for _ in range(PASSES)]
        cold = []
        for _ in range(max(5, PASSES // 3)):
            d = tempfile.mkdtemp()
            cold.append(timed(replay, dict(ENV, RUNBOOK_CACHE_DIR=d)))
            shutil.rmtree(d)
        peak_warm = peak_kib(replay, env_warm)
        d = tempfile.mkdtemp()
        peak_cold = peak_kib(replay, dict(ENV, RUNBOOK_CACHE_DIR=d))
        shutil.rmtree(d)
        peak_run = peak_kib([RUNBOOK, "run", "mfa-recovery", "--user", (seed("peak") and "peak"), "--yes",
                             "--endpoint-url", url, "--journal", os.path.join(journals, "peak.jsonl")], ENV)
        print("\nrunbook replay of the seed fixture, whole process, offline:")
        print(f"  warm cache  median {ms(statistics.median(warm))}  peak {peak_warm / 1024:5.1f} MiB  (targets < 20 ms, < 50 MB)")
        print(f"  cold cache  median {ms(statistics.median(cold))}  peak {peak_cold / 1024:5.1f} MiB  (target < 300 ms)")
        print(f"  cold / warm {statistics.median(cold) / statistics.median(warm):6.2f}x  (target <= 2x: a shipped runbook's code comes with the binary)")
        print(f"  runbook run against moto: peak {peak_run / 1024:5.1f} MiB")
        python = python_figures(env_warm)
        print("\nthe Python runbook (runbooks/python/mfa-recovery) against the Rust one:")
        print(f"  component size        {python['size'] / 1e6:6.1f} MB  (Rust: {python['rust_size'] / 1e3:.1f} kB)")
        print(f"  first run of a fresh copy {ms(python['build'])}  (componentize-py build, then compile; once per change)")
        print(f"  replay, cold cache    {ms(python['cold'])}  (wasmtime compiles it; Rust: {ms(statistics.median(cold))})")
        print(f"  replay, warm cache    {ms(python['warm'])}  (Rust: {ms(statistics.median(warm))}; {python['warm'] / statistics.median(warm):.1f}x)")
        print(f"  peak, warm replay     {python['peak'] / 1024:5.1f} MiB")
        shutil.rmtree(warm_dir)
        shutil.rmtree(journals)
        with open(os.path.join(ROOT, "target/bench-whole.json"), "w") as f:
            json.dump({"medians_s": med, "replay_warm_s": statistics.median(warm),
                       "replay_cold_s": statistics.median(cold), "peak_kib": {
                           "replay_warm": peak_warm, "replay_cold": peak_cold, "run": peak_run},
                       "python": python}, f, indent=2)
    finally:
        moto.terminate()
        moto.wait(timeout=10)
        shutil.rmtree(installed, ignore_errors=True)


if __name__ == "__main__":
    main()
