#!/usr/bin/env python3
"""Sync benchmark: prints figures, asserts nothing about speed.

Run through scripts/bench-sync.sh (it builds the release binaries and installs PouchDB).
Needs root: the servers run in a network namespace of their own, reached over a veth pair,
so that the bytes on the wire are read off the interface, and so that a rural link can be
emulated with tc netem.

1. 10,000 tips pushed by one Bình Yên station and pulled by a second (unshaped link): time,
   bytes on the wire per tip, peak memory of the station processes and of the server.
2. The same 10,000 records replicated by PouchDB into pouchdb-server and out to a second
   PouchDB, measured the same way.
3. A month of one commune's work over an emulated rural link (256 kbit/s, 150 ms each way,
   3 % loss each way): pushed with a cut (kill -9) mid-way and resumed, then pulled by a
   second laptop. Shows that the resumed sync sends only what was not acknowledged.
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("BINHYEN_RELEASE_DIR") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release"
)
CLI = os.path.join(TARGET, "binhyen")
SERVER = os.path.join(TARGET, "binhyen-server")
UNITS = os.path.join(ROOT, "crates/store/data/admin-units-2025.csv")
POUCH = os.path.join(ROOT, "bench/pouchdb")
NS = "byb%d" % os.getpid()
HOST_IF, NS_IF = "byh%d" % (os.getpid() % 10000), "byn%d" % (os.getpid() % 10000)
HOST_IP, NS_IP = "10.77.0.1", "10.77.0.2"
PASS = "mật khẩu benchmark"
N = int(os.environ.get("BINHYEN_BENCH_TIPS", "10000"))
MONTH = int(os.environ.get("BINHYEN_BENCH_MONTH_TIPS", "300"))


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def setup_netns():
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF)
    sh("ip", "link", "set", NS_IF, "netns", NS)
    sh("ip", "addr", "add", HOST_IP + "/24", "dev", HOST_IF)
    sh("ip", "link", "set", HOST_IF, "up")
    sh("ip", "netns", "exec", NS, "ip", "addr", "add", NS_IP + "/24", "dev", NS_IF)
    sh("ip", "netns", "exec", NS, "ip", "link", "set", NS_IF, "up")
    sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")


def teardown_netns():
    sh("ip", "link", "del", HOST_IF, check=False)
    sh("ip", "netns", "del", NS, check=False)


NETEM = ["delay", "150ms", "rate", "256kbit", "loss", "3%"]
LINK = {"how": None}


def netem_available():
    sh("ip", "link", "add", "bybt0", "type", "veth", "peer", "name", "bybt1")
    try:
        return sh("tc", "qdisc", "add", "dev", "bybt0", "root", "netem", *NETEM,
                  check=False).returncode == 0
    finally:
        sh("ip", "link", "del", "bybt0", check=False)


def shape(on):
    """The rural link: netem where the kernel has it; otherwise a token bucket for the rate,
    nftables for the loss, and a relay in the server's namespace for the delay."""
    if on:
        if netem_available():
            LINK["how"] = "tc netem"
            sh("tc", "qdisc", "replace", "dev", HOST_IF, "root", "netem", *NETEM)
            sh("ip", "netns", "exec", NS, "tc", "qdisc", "replace", "dev", NS_IF, "root",
               "netem", *NETEM)
            return
        LINK["how"] = "tc tbf + nftables drop + a delaying relay (this kernel has no netem)"
        if shutil.which("nft") is None:
            sys.exit("this kernel has no netem and nft is missing: install nftables "
                     "(scripts/bench-sync.sh does)")
        tbf = ["root", "tbf", "rate", "256kbit", "burst", "4kb", "latency", "2s"]
        sh("tc", "qdisc", "replace", "dev", HOST_IF, *tbf)
        sh("ip", "netns", "exec", NS, "tc", "qdisc", "replace", "dev", NS_IF, *tbf)
        for prefix, dev in (([], HOST_IF), (["ip", "netns", "exec", NS], NS_IF)):
            sh(*prefix, "nft", "add", "table", "inet", "byb")
            sh(*prefix, "nft", "add", "chain", "inet", "byb", "out",
               "{ type filter hook output priority 0; }")
            sh(*prefix, "nft", "add", "rule", "inet", "byb", "out", "oifname", dev,
               "numgen", "random", "mod", "100", "<", "3", "drop")
    else:
        sh("tc", "qdisc", "del", "dev", HOST_IF, "root", check=False)
        sh("ip", "netns", "exec", NS, "tc", "qdisc", "del", "dev", NS_IF, "root", check=False)
        sh("nft", "delete", "table", "inet", "byb", check=False)
        sh("ip", "netns", "exec", NS, "nft", "delete", "table", "inet", "byb", check=False)


def relay(listen_host, listen_port, target_host, target_port, delay):
    """Forwards TCP to the target, holding every chunk `delay` seconds in each direction."""
    import asyncio

    async def pump(reader, writer):
        queue = asyncio.Queue()

        async def later():
            while True:
                due, data = await queue.get()
                wait = due - asyncio.get_running_loop().time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        task = asyncio.create_task(later())
        while True:
            data = await reader.read(65536)
            await queue.put((asyncio.get_running_loop().time() + delay, data or None))
            if not data:
                break
        await task

    async def handle(client_r, client_w):
        server_r, server_w = await asyncio.open_connection(target_host, target_port)
        await asyncio.gather(pump(client_r, server_w), pump(server_r, client_w),
                             return_exceptions=True)

    async def main():
        server = await asyncio.start_server(handle, listen_host, listen_port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def wire_bytes():
    base = "/sys/class/net/%s/statistics/" % HOST_IF
    return sum(int(open(base + k).read()) for k in ("rx_bytes", "tx_bytes"))


def run_measured(args, env=None):
    """Runs a process and reaps it with wait4, for its own peak memory."""
    t0 = time.monotonic()
    p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    secs = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("%s failed: %s" % (" ".join(args[:4]), err.decode()[-2000:]))
    return out.decode(), secs, usage.ru_maxrss / 1024.0


def vm_hwm(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def wait_port(host, port, timeout=30):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect((host, port))
            return
        except OSError:
            time.sleep(0.1)
        finally:
            s.close()
    sys.exit("server on %s:%d did not start" % (host, port))


WORDS = [
    "trộm bò", "đánh bạc", "tụ tập đông người", "lừa đảo qua mạng", "Buôn Ea Kmar",
    "xe máy không biển số", "rẫy cà phê", "tin giả trên Zalo", "đêm qua", "thôn 3",
    "đường liên xã", "cháy rẫy", "tranh chấp đất", "vay tiền qua ứng dụng", "mất trộm",
]
CATEGORIES = ["crime_denunciation", "crime_report", "security_order", "admin_question",
              "misinformation", "other"]
PREFIXES = ["091", "094", "098", "097", "096", "086", "088", "090", "093", "070", "079", "083",
            "035", "038"]
CHANNELS = ["in_person", "phone", "zalo", "facebook", "letter", "hotline"]


def tips_file(path, n, seed):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            tip = {
                "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))),
                "category": rng.choice(CATEGORIES),
                "channel": rng.choice(CHANNELS),
                "address": "Thôn %d" % rng.randint(1, 12),
                "received_at": "2026-%02d-%02dT%02d:%02d:00Z" % (
                    rng.randint(1, 10), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59)),
            }
            if rng.random() < 0.4:
                tip["reporter"] = {"name": "Người báo tin %d" % i, "phone": rng.choice(PREFIXES) + "%07d" % rng.randint(0, 9999999)}
            f.write(json.dumps(tip, ensure_ascii=False) + "\n")


class Binhyen:
    def __init__(self, work, port=8443, url_port=None):
        self.work = work
        self.db = "sqlite:" + os.path.join(work, "server.db")
        self.url = "https://%s:%d" % (NS_IP, url_port or port)
        self.port = port
        subprocess.run([SERVER, "units", "import", "--db", self.db, UNITS], check=True,
                       capture_output=True)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", NS, SERVER, "serve", "--db", self.db, "--listen",
             "%s:%d" % (NS_IP, port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, BINHYEN_LOG="warn"))
        wait_port(NS_IP, port)
        self.n = 0

    def laptop(self, unit):
        self.n += 1
        prov = os.path.join(self.work, "p%d.json" % self.n)
        subprocess.run([SERVER, "station", "enroll", "--unsealed", "--db", self.db, "--unit", unit, "--url",
                        self.url, "--out", prov], check=True, capture_output=True)
        d = os.path.join(self.work, "laptop%d" % self.n)
        lap = Laptop(d)
        lap.run("enroll", prov)
        return lap

    def peak_mib(self):
        return vm_hwm(self.proc.pid)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)


class Laptop:
    def __init__(self, d):
        self.dir = d
        self.env = dict(os.environ, BINHYEN_USER="truong", BINHYEN_PASSWORD=PASS, BINHYEN_LOG="warn")

    def args(self, *a):
        return [CLI, "--data-dir", self.dir, "--json", *a]

    def run(self, *a):
        p = subprocess.run(self.args(*a), env=self.env, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("binhyen %s failed: %s" % (" ".join(a), p.stderr[-2000:]))
        return json.loads(p.stdout) if p.stdout.strip() else None

    def sync_measured(self):
        out, secs, rss = run_measured(self.args("sync"), env=self.env)
        return json.loads(out), secs, rss


def line(label, secs, wire, n, rss_client, rss_server, process_secs=None):
    extra = "  (whole process %.2f s)" % process_secs if process_secs is not None else ""
    print("  %-26s %6.2f s  %6.0f B/tip  %6.1f MiB station  %6.1f MiB server%s"
          % (label, secs, wire / n, rss_client, rss_server, extra))


def bench_binhyen(work, jsonl):
    print("Bình Yên: %d tips, one station pushes, another pulls (HTTPS, zstd, veth, unshaped)" % N)
    srv = Binhyen(work)
    a, b = srv.laptop("24280"), srv.laptop("24280")
    t0 = time.monotonic()
    a.run("tip", "import", jsonl)
    print("  (import into the station: %.1f s, not counted)" % (time.monotonic() - t0))
    w0 = wire_bytes()
    rep, push_s, push_rss = a.sync_measured()
    w1 = wire_bytes()
    assert rep["checksum_ok"], rep
    rep_b, pull_s, pull_rss = b.sync_measured()
    w2 = wire_bytes()
    assert rep_b["checksum_ok"], rep_b
    server_rss = srv.peak_mib()
    # The sync itself, as PouchDB's replication is timed; the whole process adds the start
    # and the unlocking of the encrypted station (Argon2id, deliberately slow).
    line("push (%d changes)" % rep["pushed"], rep["seconds"], w1 - w0, N, push_rss, server_rss,
         push_s)
    line("pull (%d changes)" % rep_b["pulled"], rep_b["seconds"], w2 - w1, N, pull_rss,
         server_rss, pull_s)
    srv.stop()
    return rep["seconds"] + rep_b["seconds"], (w2 - w0)


def bench_pouchdb(work, jsonl):
    print("PouchDB %s into pouchdb-server (LevelDB on disk both sides), same %d records"
          % (json.load(open(os.path.join(POUCH, "node_modules/pouchdb/package.json")))["version"], N))
    port = 5984
    srv = subprocess.Popen(
        ["ip", "netns", "exec", NS, "node", os.path.join(POUCH, "node_modules/pouchdb-server/bin/pouchdb-server"),
         "--host", NS_IP, "--port", str(port), "--dir", os.path.join(work, "pouch-server")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
    wait_port(NS_IP, port)
    url = "http://%s:%d/tips" % (NS_IP, port)
    script = os.path.join(POUCH, "replicate.js")
    w0 = wire_bytes()
    out, _, push_rss = run_measured(["node", script, "push", url, os.path.join(work, "pa"), jsonl])
    w1 = wire_bytes()
    push = json.loads(out)
    out, _, pull_rss = run_measured(["node", script, "pull", url, os.path.join(work, "pb")])
    w2 = wire_bytes()
    pull = json.loads(out)
    assert pull["docs"] == N, pull
    server_rss = vm_hwm(srv.pid)
    line("push (replicate.to)", push["replicate_ms"] / 1000, w1 - w0, N, push_rss, server_rss)
    line("pull (replicate.from)", pull["replicate_ms"] / 1000, w2 - w1, N, pull_rss, server_rss)
    print("  (loading the local PouchDB: %.1f s, not counted)" % (push["load_ms"] / 1000))
    srv.send_signal(signal.SIGTERM)
    srv.wait(10)
    return (push["replicate_ms"] + pull["replicate_ms"]) / 1000, (w2 - w0)


def bench_rural(work):
    print("A month of one commune (%d tips) over a rural link: 256 kbit/s, 150 ms and 3 %% loss each way"
          % MONTH)
    relay_proc = None
    if netem_available():
        srv = Binhyen(work, port=9443)
    else:
        relay_proc = subprocess.Popen(
            ["ip", "netns", "exec", NS, sys.executable, os.path.abspath(__file__), "--relay",
             NS_IP, "9444", NS_IP, "9443", "0.150"])
        srv = Binhyen(work, port=9443, url_port=9444)
        wait_port(NS_IP, 9444)
    c, d = srv.laptop("24235"), srv.laptop("24235")
    month = os.path.join(work, "month.jsonl")
    tips_file(month, MONTH, 7)
    c.run("tip", "import", month)
    total = c.run("status")["pending_changes"]
    try:
        shape(True)
        t0 = time.monotonic()
        p = subprocess.Popen(c.args("sync"), env=c.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        # Cut the link the hard way once the server has acknowledged part of the work.
        while True:
            time.sleep(0.5)
            left = c.run("status")["pending_changes"]
            if left < total or p.poll() is not None:
                break
        cut_s = time.monotonic() - t0
        p.send_signal(signal.SIGKILL)
        p.wait()
        left = c.run("status")["pending_changes"]
        print("  cut (kill -9) after %.1f s: %d of %d changes acknowledged, %d waiting"
              % (cut_s, total - left, total, left))
        w0 = wire_bytes()
        rep, resume_s, _ = c.sync_measured()
        w1 = wire_bytes()
        assert rep["checksum_ok"], rep
        print("  resumed: sent %d changes (the %d waiting, nothing acknowledged sent again) in %.1f s, %.0f kB"
              % (rep["pushed"], left, resume_s, (w1 - w0) / 1000))
        if rep["pushed"] > left + 250:
            sys.exit("resumed push re-sent acknowledged changes")
        rep_d, pull_s, pull_rss = d.sync_measured()
        w2 = wire_bytes()
        assert rep_d["checksum_ok"], rep_d
        print("  second laptop catches up: %d changes in %.1f s, %.0f kB on the wire, %.1f MiB peak"
              % (rep_d["pulled"], pull_s, (w2 - w1) / 1000, pull_rss))
    finally:
        shape(False)
        srv.stop()
        if relay_proc:
            relay_proc.kill()
        print("  (link emulated with %s)" % LINK["how"])


def main():
    if len(sys.argv) == 7 and sys.argv[1] == "--relay":
        _, _, lh, lp, th, tp, delay = sys.argv
        relay(lh, int(lp), th, int(tp), float(delay))
        return
    if os.geteuid() != 0:
        sys.exit("the sync benchmark needs root (network namespace, tc netem)")
    work = tempfile.mkdtemp(prefix="binhyen-bench-")
    jsonl = os.path.join(work, "tips.jsonl")
    tips_file(jsonl, N, 1)
    setup_netns()
    try:
        by_dir = os.path.join(work, "binhyen")
        os.makedirs(by_dir)
        by_s, by_w = bench_binhyen(by_dir, jsonl)
        pouch_dir = os.path.join(work, "pouch")
        os.makedirs(pouch_dir)
        pd_s, pd_w = bench_pouchdb(pouch_dir, jsonl)
        print("Ratio PouchDB / Bình Yên: %.1f× the time, %.1f× the bytes on the wire"
              % (pd_s / by_s, pd_w / by_w))
        rural = os.path.join(work, "rural")
        os.makedirs(rural)
        bench_rural(rural)
    finally:
        teardown_netns()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
