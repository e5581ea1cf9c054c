#!/usr/bin/env python3
"""Whole-run benchmarks of sim7k against the tools people use today, on this machine, now.

    python3 benches/compare.py                  # everything (2 minutes, plus the builds)
    python3 benches/compare.py --quick          # fewer repetitions
    python3 benches/compare.py --only steps,wire --skip-build
    python3 benches/compare.py --only steps --sim7k path/to/older/sim7k --out old.json

Sections (docs/performance.md explains each figure and how to read it):

  size     release binary size with and without the `embedded-broker` feature
  steps    per-step overhead against the zero-latency emulator: sim7k vs pppd's `chat`
           vs a no-logic Python floor client, same AT dialogue, same emulator process
  origin   the original Python approach (eight commands, sleep(1) after each write, one
           readline each) vs `sim7k run` of the same flow, both publishing to mosquitto
  wire     serial bytes written per MQTT payload byte for 1 KiB, 16 KiB and 1 MiB
           publishes, binary `AT+CIPSEND=<len>` vs hex mode (`AT+CIPSENDHEX=1`)
  startup  start-up time (hyperfine) and peak RSS (GNU time) of `sim7k check` / `sim7k run`

Every figure is a median over repetitions made in this run; ratios compare figures measured
in the same run on the same machine. Nothing here asserts a time: the script only reports.
Results go to stdout (Markdown tables) and to target/bench/compare.json (`--out`).

Needs: cargo, python3 (stdlib only), /usr/sbin/chat (Debian `ppp`), mosquitto and
mosquitto_sub (Debian `mosquitto`, `mosquitto-clients`), hyperfine, GNU time (`time`), strip.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "target" / "bench"
CHAT = shutil.which("chat") or "/usr/sbin/chat"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
TIME = "/usr/bin/time"  # GNU time (Debian package `time`)

# The AT dialogue of the per-step comparison: commands every tool can run the same way
# (information lines, then OK). It is cycled to make N steps.
DIALOGUE = ["AT", "AT+CSQ", "AT+CGSN", "AT+CPIN?", "AT+CEREG?", "AT+CGATT?", "AT+CGMR", "AT+COPS?"]


# ---------------------------------------------------------------------------------------------
# helpers


def log(msg: str) -> None:
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_measured(argv, stdin=None, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                 check=True, timeout=600):
    """Run a command; return (wall seconds, exit code)."""
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdin=stdin, stdout=stdout, stderr=stderr, timeout=timeout)
    wall = time.perf_counter() - t0
    if check and p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {' '.join(map(str, argv))}")
    return wall, p.returncode


def peak_rss_kib(argv, tmp: Path, **kw) -> int:
    """Peak RSS of a command, from GNU time (`%M`). Not from our own wait4: a child forked
    from this Python process reports Python's RSS as its high-water mark."""
    out = tmp / "time.out"
    run_measured([TIME, "-f", "%M", "-o", str(out), *argv], **kw)
    return int(out.read_text().split()[-1])


class Proc:
    """A background process we started (stopped by its pid only)."""

    def __init__(self, argv, **kw):
        self.argv = argv
        self.p = subprocess.Popen(argv, **kw)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def wait_for(pred, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


class Mosquitto(Proc):
    def __init__(self, tmp: Path):
        self.port = free_port()
        conf = tmp / f"mosquitto-{self.port}.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        super().__init__([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_for(up, "mosquitto")


class Subscriber(Proc):
    """mosquitto_sub printing one line per message: `<topic> <payload length>`."""

    def __init__(self, port: int, topic: str, tmp: Path):
        self.out = tmp / f"sub-{port}-{topic.replace('/', '_')}.txt"
        self.f = open(self.out, "w")
        super().__init__(["mosquitto_sub", "-p", str(port), "-t", topic, "-F", "%t %l", "-q", "1"],
                         stdout=self.f, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # let the subscription reach the broker

    def lines(self):
        self.f.flush()
        return [line.split() for line in self.out.read_text().splitlines() if line.strip()]

    def stop(self):
        super().stop()
        self.f.close()


class Emulator(Proc):
    def __init__(self, sim7k: Path, tmp: Path, name: str, profile="zero", redirect=None):
        self.link = tmp / f"{name}.port"
        argv = [str(sim7k), "emulate", "--link", str(self.link), "--profile", profile]
        if redirect:
            argv += ["--redirect", redirect]
        super().__init__(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.link.exists, f"emulator link {self.link}")
        time.sleep(0.1)
        subprocess.run(["stty", "-F", str(self.link), "raw", "-echo"], check=True)


def sim7k_bin(features: str) -> Path:
    return OUT_DIR / f"sim7k-{features}"


# ---------------------------------------------------------------------------------------------
# size


def build(skip: bool) -> dict:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    res = {}
    for features, extra in [("nobroker", ["--no-default-features"]), ("full", [])]:
        dst = sim7k_bin(features)
        if not (skip and dst.exists()):
            log(f"cargo build --release {' '.join(extra)}")
            subprocess.run(["cargo", "build", "--release", "-q", *extra], cwd=ROOT, check=True)
            shutil.copy2(ROOT / "target" / "release" / "sim7k", dst)
        stripped = OUT_DIR / f"sim7k-{features}.stripped"
        shutil.copy2(dst, stripped)
        subprocess.run(["strip", "--strip-all", str(stripped)], check=True)
        res[features] = {"bytes": dst.stat().st_size, "stripped_bytes": stripped.stat().st_size}
    res["chat"] = {"bytes": Path(CHAT).stat().st_size}
    return res


# ---------------------------------------------------------------------------------------------
# steps: per-step overhead


def dialogue(n: int):
    return [DIALOGUE[i % len(DIALOGUE)] for i in range(n)]


def chat_script(cmds, path: Path):
    lines = ["TIMEOUT 5", "ABORT ERROR", f"'' {cmds[0]}"]
    lines += [f"OK {c}" for c in cmds[1:]]
    lines.append("OK")
    path.write_text("\n".join(lines) + "\n")


def step_recipe(cmds, path: Path):
    lines = [f"name: {len(cmds)} steps", "sync: false", "timeout: 5s", "steps:"]
    lines += [f"  - send: {c}" for c in cmds]
    path.write_text("\n".join(lines) + "\n")


def floor_client(port: str, cmds) -> int:
    """The least any AT client can do: write a command, read until `OK\\r\\n`, next."""
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    buf = b""
    for c in cmds:
        os.write(fd, c.encode() + b"\r")
        while b"OK\r\n" not in buf:
            r, _, _ = select.select([fd], [], [], 5)
            if not r:
                return 3
            buf += os.read(fd, 4096)
        buf = buf[buf.index(b"OK\r\n") + 4:]
    os.close(fd)
    return 0


def section_steps(sim7k: Path, tmp: Path, reps: int) -> dict:
    emu = Emulator(sim7k, tmp, "steps")
    port = str(emu.link)
    # Warm the emulator up (boot URCs) so every tool sees the same idle modem.
    floor_client(port, ["AT"])
    tools = {
        # name: (N small, N large, repetitions)
        "chat": (8, 48, max(3, reps // 2)),
        "floor": (8, 208, reps),
        "sim7k": (8, 208, reps),
        "sim7k_transcript": (8, 208, reps),
    }
    res = {}
    try:
        for name, (n1, n2, r) in tools.items():
            per_n = {}
            for n in (n1, n2):
                cmds = dialogue(n)
                times = []
                for _ in range(r):
                    if name == "chat":
                        script = tmp / f"chat-{n}"
                        chat_script(cmds, script)
                        with open(port, "rb") as fin, open(port, "wb") as fout:
                            wall, _ = run_measured([CHAT, "-f", str(script)], stdin=fin,
                                                   stdout=fout)
                    elif name == "floor":
                        # In this process: no interpreter start-up to subtract.
                        t0 = time.perf_counter()
                        if floor_client(port, cmds) != 0:
                            raise RuntimeError("floor client: no OK within 5 s")
                        wall = time.perf_counter() - t0
                    else:
                        recipe = tmp / f"steps-{n}.yaml"
                        step_recipe(cmds, recipe)
                        argv = [str(sim7k), "run", str(recipe), "--port", port, "-q"]
                        if name == "sim7k_transcript":
                            argv += ["--transcript", str(tmp / "steps.transcript")]
                        wall, _ = run_measured(argv)
                    times.append(wall)
                per_n[n] = median(times)
            per_step = (per_n[n2] - per_n[n1]) / (n2 - n1)
            res[name] = {"n": [n1, n2], "median_seconds": [per_n[n1], per_n[n2]],
                         "per_step_ms": per_step * 1e3, "reps": r}
            log(f"steps {name}: {per_step * 1e3:.3f} ms/step")
    finally:
        emu.stop()
    # chat sleeps 10 ms before every character it writes (chat.c put_char: usleep(10000)).
    # A 10 ms sleep takes a little longer than 10 ms (timer slack, wake-up): measure it.
    naps = []
    for _ in range(50):
        t0 = time.perf_counter()
        time.sleep(0.01)
        naps.append(time.perf_counter() - t0)
    nap_ms = median(naps) * 1e3
    chars = sum(len(c) + 1 for c in DIALOGUE) / len(DIALOGUE)
    res["chat"]["measured_10ms_sleep_ms"] = nap_ms
    res["chat"]["typing_delay_ms_per_step"] = nap_ms * chars
    res["chat"]["net_of_typing_delay_ms"] = res["chat"]["per_step_ms"] - nap_ms * chars
    res["mean_command_bytes"] = chars
    return res


# ---------------------------------------------------------------------------------------------
# origin: the original Python approach


def mqtt_connect(client_id: str) -> bytes:
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id.encode()
    return bytes([0x10, len(body)]) + body


def mqtt_publish(topic: str, payload: bytes) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic.encode() + payload
    assert len(body) < 128
    return bytes([0x30, len(body)]) + body


def origin_client(port: str, broker_port: str, topic: str) -> int:
    """The original approach: a write, sleep(1), one readline (1 s timeout), eight times."""
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    pending = b""

    def readline():
        nonlocal pending
        deadline = time.monotonic() + 1.0  # serial.Serial(..., timeout=1)
        while b"\n" not in pending:
            left = deadline - time.monotonic()
            r, _, _ = select.select([fd], [], [], max(0.0, left))
            if not r:
                break
            pending += os.read(fd, 4096)
        line, sep, rest = pending.partition(b"\n")
        pending = rest
        return line + sep

    def step(data: bytes):
        os.write(fd, data)
        time.sleep(1)
        readline()

    msg = mqtt_connect("origin-python") + mqtt_publish(topic, b"hello from python")
    step(b"AT+CIPCLOSE\r\n")
    step(b"AT+CIPSENDHEX=1\r\n")
    step(b'AT+CSTT="nbiot"\r\n')
    step(b"AT+CIICR\r\n")
    step(b"AT+CIFSR\r\n")
    step(f'AT+CIPSTART="TCP","127.0.0.1","{broker_port}"\r\n'.encode())
    # AT+CIPSEND, then the packets as hex text ended by 1A (the prompt is not checked).
    step(b"AT+CIPSEND\r\n")
    step(" ".join(f"{b:02X}" for b in msg).encode() + b" 1A")
    step(b"AT+CIPCLOSE\r\n")
    os.close(fd)
    return 0


def origin_recipe(path: Path, broker_port: int, topic: str, attach_wait: bool = False):
    """The original eight commands as a recipe. sim7k's start-up sync (`AT` until `OK`) stays
    on: the original has no equivalent and leans on its first sleep. `attach_wait` adds the
    one step a real network needs and the original lacks: poll `AT+CEREG?` until registered
    (as recipes/fareastone-nbiot.yaml does)."""
    attach = """  - send: AT+CEREG?
    until: '/^\\+CEREG: \\d,[15]/'
    interval: 1s
    deadline: 2m
""" if attach_wait else ""
    path.write_text(f"""name: the original Python flow, as a recipe
timeout: 30s
scripts: {ROOT / 'scripts' / 'mqtt.rhai'}
vars:
  client_id: origin-sim7k
  topic: {topic}
  payload: hello from sim7k
steps:
  - send: AT+CIPCLOSE
    on_fail: continue          # ERROR when nothing is open, as in the original
  - send: AT+CIPSENDHEX=1
{attach}  - send: AT+CSTT="nbiot"
  - send: AT+CIICR
    timeout: 85s
  - send: AT+CIFSR
  - send: AT+CIPSTART="TCP","127.0.0.1","{broker_port}"
    timeout: 75s
  - script: let packet = connect_packet() + publish_packet();
  - send_data: packet
    data: {{ hex: true }}
  - send: AT+CIPCLOSE
""")


def section_origin(sim7k: Path, tmp: Path, reps: int, nbiot: bool) -> dict:
    """Each run gets a freshly powered emulator: the original flow leaves the modem in a state
    (bearer up, TCP closed) where its own first commands fail on a second run."""
    broker = Mosquitto(tmp)
    topic = "bench/origin"
    sub = Subscriber(broker.port, topic, tmp)
    recipes = {"sim7k": tmp / "origin.yaml", "sim7k_attach_wait": tmp / "origin-attach.yaml"}
    origin_recipe(recipes["sim7k"], broker.port, topic)
    origin_recipe(recipes["sim7k_attach_wait"], broker.port, topic, attach_wait=True)
    res = {}
    try:
        for profile in ["zero"] + (["nbiot"] if nbiot else []):
            out = {}
            names = ["python", "sim7k"] + (["sim7k_attach_wait"] if profile != "zero" else [])
            for name in names:
                runs = reps if name == "sim7k" else min(reps, 3)
                if profile != "zero":
                    runs = 1
                times, codes, delivered = [], [], 0
                for i in range(runs):
                    emu = Emulator(sim7k, tmp, f"origin-{profile}-{name}-{i}", profile=profile,
                                   redirect=f"127.0.0.1:{broker.port}")
                    before = len(sub.lines())
                    try:
                        if name == "python":
                            argv = [sys.executable, __file__, "_origin", str(emu.link),
                                    str(broker.port), topic]
                        else:
                            argv = [str(sim7k), "run", str(recipes[name]), "--port",
                                    str(emu.link), "-q"]
                        wall, code = run_measured(argv, check=False)
                        time.sleep(0.3)
                    finally:
                        emu.stop()
                    times.append(wall)
                    codes.append(code)
                    delivered += min(1, len(sub.lines()) - before)
                out[name] = {"median_seconds": median(times), "runs": runs,
                             "exit_codes": codes, "delivered": delivered}
                log(f"origin {profile} {name}: {median(times):.3f} s, "
                    f"{delivered}/{runs} delivered, exits {codes}")
            out["ratio_python_over_sim7k"] = (out["python"]["median_seconds"]
                                              / out["sim7k"]["median_seconds"])
            res[profile] = out
    finally:
        sub.stop()
        broker.stop()
    return res


# ---------------------------------------------------------------------------------------------
# wire: bytes written per payload byte


def wire_recipe(path: Path, broker_port: int, size: int, hex_mode: bool):
    # The emulator keeps AT+CIPSENDHEX across runs, like a modem: always set it.
    hex_steps = f"  - send: AT+CIPSENDHEX={1 if hex_mode else 0}\n"
    data = "\n    data: { hex: true }" if hex_mode else ""
    path.write_text(f"""name: publish {size} bytes ({'hex' if hex_mode else 'binary'})
sync: false
timeout: 30s
scripts: {ROOT / 'scripts' / 'mqtt.rhai'}
vars:
  client_id: wire
  topic: bench/wire
  qos: 1
steps:
  - send: ATE0
  - send: AT+CIPSHUT
  - send: AT+CIPRXGET=1
{hex_steps}  - send: AT+CSTT="nbiot"
  - send: AT+CIICR
  - send: AT+CIFSR
  - send: AT+CIPSTART="TCP","127.0.0.1",{broker_port}
  - script: let hello = connect_packet();
  - send_data: hello{data}
  - expect_mqtt: connack
  - name: build
    script: |
      set_var("payload_bytes", blob({size}, 0x55));
      let pub = publish_packet();
  - name: publish
    send_data: pub{data}
    timeout: 600s
  - expect_mqtt: {{ packet: puback, packet_id: "{{{{packet_id}}}}" }}
  - script: let bye = mqtt_disconnect();
  - send_data: bye{data}
  - send: AT+CIPSHUT
""")


_ESC = re.compile(rb"\\(x[0-9A-Fa-f]{2}|r|n|t|\\)")


def unescape_len(text: bytes) -> int:
    """Bytes represented by a transcript entry (escapes: \\r \\n \\t \\xNN \\\\)."""
    return len(_ESC.sub(b"_", text))


def transcript_tx_by_step(path: Path) -> dict:
    """Bytes written (`>` entries) per step name, from a sim7k transcript."""
    per_step, current = {}, "(before steps)"
    step_start = re.compile(rb"# step \d+ `([^`]*)` \(")
    for raw in path.read_bytes().splitlines():
        body = raw.lstrip()
        parts = body.split(b" ", 2)
        if len(parts) < 2:
            continue
        kind = parts[1]
        rest = parts[2] if len(parts) > 2 else b""
        if kind == b"#":
            m = step_start.match(b"# " + rest)
            if m:
                current = m.group(1).decode()
        elif kind == b">":
            per_step[current] = per_step.get(current, 0) + unescape_len(rest)
    return per_step


def section_wire(sim7k: Path, tmp: Path, sizes) -> dict:
    broker = Mosquitto(tmp)
    sub = Subscriber(broker.port, "bench/wire", tmp)
    emu = Emulator(sim7k, tmp, "wire", redirect=f"127.0.0.1:{broker.port}")
    res = {}
    try:
        for size in sizes:
            for mode in ["binary", "hex"]:
                recipe = tmp / f"wire-{size}-{mode}.yaml"
                wire_recipe(recipe, broker.port, size, mode == "hex")
                transcript = tmp / f"wire-{size}-{mode}.transcript"
                report = tmp / f"wire-{size}-{mode}.json"
                before = len(sub.lines())
                with open(report, "w") as out:
                    rss_out = tmp / "wire-time.out"
                    wall, code = run_measured(
                        [TIME, "-f", "%M", "-o", str(rss_out),
                         str(sim7k), "run", str(recipe), "--port", str(emu.link), "-q", "--json",
                         "--transcript", str(transcript)], stdout=out, check=False)
                time.sleep(0.3)
                got = sub.lines()[before:]
                steps = json.loads(report.read_text()).get("steps", [])
                seconds = next((s["seconds"] for s in steps if s["name"] == "publish"), None)
                tx = transcript_tx_by_step(transcript)
                publish_tx = tx.get("publish", 0)
                total_tx = sum(tx.values())
                res[f"{size}/{mode}"] = {
                    "payload": size, "mode": mode, "exit_code": code,
                    "delivered_payload_lengths": [int(x[1]) for x in got if len(x) > 1],
                    "publish_tx_bytes": publish_tx, "run_tx_bytes": total_tx,
                    "tx_per_payload_byte": publish_tx / size,
                    "publish_seconds": seconds, "run_seconds": wall,
                    "peak_rss_kib": int(rss_out.read_text().split()[-1]),
                }
                log(f"wire {size} {mode}: {publish_tx} B written for {size} B "
                    f"({publish_tx / size:.3f}/B) in {seconds} s, exit {code}, "
                    f"delivered {[x[1] for x in got]}")
    finally:
        emu.stop()
        sub.stop()
        broker.stop()
    return res


# ---------------------------------------------------------------------------------------------
# startup: hyperfine + peak RSS


def section_startup(sim7k: Path, tmp: Path, reps: int) -> dict:
    emu = Emulator(sim7k, tmp, "startup")
    one = tmp / "one.yaml"
    step_recipe(["AT"], one)
    chat1 = tmp / "one.chat"
    chat_script(["AT"], chat1)
    recipe = ROOT / "recipes" / "fareastone-nbiot.yaml"
    port = str(emu.link)
    cmds = {
        "sim7k --version": [str(sim7k), "--version"],
        "sim7k check (fareastone)": [str(sim7k), "check", str(recipe)],
        "sim7k run (1 step, emulator)": [str(sim7k), "run", str(one), "--port", port, "-q"],
        "sim7k run --emulate (fareastone, 27 steps, in-process emulator + broker)":
            [str(sim7k), "run", str(recipe), "--emulate", "--emulator-profile", "zero", "-q"],
        "chat (1 command, emulator)": ["sh", "-c", f"{CHAT} -f {chat1} < {port} > {port}"],
        "python3 start (the original approach's interpreter)":
            [sys.executable, "-c", "import os, time, termios"],
    }
    res = {}
    try:
        runs = str(max(10, reps * 4))
        results = []
        # Plain commands run without a shell (-N); chat needs one for its redirections
        # (hyperfine subtracts the shell's own start-up from those).
        for shell in (False, True):
            hf = tmp / f"hyperfine-{shell}.json"
            argv = ["hyperfine", "--warmup", "3", "--runs", runs, "--export-json", str(hf),
                    "--style", "none"] + ([] if shell else ["-N"])
            for name, a in cmds.items():
                if (a[0] == "sh") == shell:
                    argv += ["-n", name, a[2] if shell else shlex.join(a)]
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            results += json.loads(hf.read_text())["results"]
        for r in results:
            res[r["command"]] = {"median_ms": r["median"] * 1e3, "mean_ms": r["mean"] * 1e3,
                                 "stddev_ms": (r.get("stddev") or 0) * 1e3}
        for name, a in cmds.items():
            rss = []
            for _ in range(5):
                if a[0] == "sh":
                    with open(port, "rb") as fin, open(port, "wb") as fout:
                        kib = peak_rss_kib([CHAT, "-f", str(chat1)], tmp, stdin=fin, stdout=fout)
                else:
                    kib = peak_rss_kib(a, tmp)
                rss.append(kib)
            res.setdefault(name, {})["peak_rss_kib"] = median(rss)
            log(f"startup {name}: {res[name].get('median_ms', float('nan')):.1f} ms, "
                f"{median(rss):.0f} KiB")
    finally:
        emu.stop()
    return res


# ---------------------------------------------------------------------------------------------
# report


def markdown(r: dict) -> str:
    out = []
    if "size" in r:
        s = r["size"]
        out += ["### Binary size", "", "| build | bytes | stripped |", "|---|---:|---:|"]
        for k in ["full", "nobroker"]:
            out.append(f"| sim7k ({'default, embedded-broker' if k == 'full' else '--no-default-features'}) "
                       f"| {s[k]['bytes']:,} | {s[k]['stripped_bytes']:,} |")
        out.append(f"| /usr/sbin/chat | {s['chat']['bytes']:,} | (Debian build) |")
        out.append("")
    if "steps" in r:
        s = r["steps"]
        base = s["sim7k"]["per_step_ms"]
        out += ["### Per-step overhead", "",
                "| client | steps (small, large) | median wall (s) | per step (ms) | vs sim7k |",
                "|---|---|---|---:|---:|"]
        for k in ["floor", "sim7k", "sim7k_transcript", "chat"]:
            v = s[k]
            out.append(f"| {k} | {v['n'][0]}, {v['n'][1]} | "
                       f"{v['median_seconds'][0]:.3f}, {v['median_seconds'][1]:.3f} | "
                       f"{v['per_step_ms']:.3f} | {v['per_step_ms'] / base:.2f}× |")
        out.append(f"| chat net of its 10 ms/char typing delay "
                   f"({s['mean_command_bytes']:.1f} chars × "
                   f"{s['chat']['measured_10ms_sleep_ms']:.3f} ms = "
                   f"{s['chat']['typing_delay_ms_per_step']:.1f} ms/step) | | | "
                   f"{s['chat']['net_of_typing_delay_ms']:.3f} | "
                   f"{s['chat']['net_of_typing_delay_ms'] / base:.2f}× |")
        out.append("")
    if "origin" in r:
        out += ["### The original Python approach", "",
                "| emulator profile | flow | median wall (s) | runs | exit codes | delivered | "
                "original / this |", "|---|---|---:|---:|---|---:|---:|"]
        for prof, v in r["origin"].items():
            base = v["python"]["median_seconds"]
            for k in ["python", "sim7k", "sim7k_attach_wait"]:
                if k not in v:
                    continue
                x = v[k]
                out.append(f"| {prof} | {k} | {x['median_seconds']:.3f} | {x['runs']} | "
                           f"{x['exit_codes']} | {x['delivered']}/{x['runs']} | "
                           f"{base / x['median_seconds']:.1f}× |")
        out.append("")
    if "wire" in r:
        out += ["### Bytes on the wire", "",
                "| payload | mode | serial bytes written (publish step) | per payload byte | "
                "publish time (s) | peak RSS (KiB) | delivered |",
                "|---:|---|---:|---:|---:|---:|---|"]
        for v in r["wire"].values():
            sec = v["publish_seconds"]
            out.append(f"| {v['payload']:,} | {v['mode']} | {v['publish_tx_bytes']:,} | "
                       f"{v['tx_per_payload_byte']:.3f} | "
                       f"{'' if sec is None else f'{sec:.3f}'} | {v['peak_rss_kib']:,} | "
                       f"{v['delivered_payload_lengths']} |")
        out.append("")
    if "startup" in r:
        out += ["### Start-up time and peak memory", "",
                "| command | median (ms) | peak RSS (KiB) |", "|---|---:|---:|"]
        for k, v in r["startup"].items():
            out.append(f"| {k} | {v.get('median_ms', float('nan')):.1f} | "
                       f"{v.get('peak_rss_kib', float('nan')):,.0f} |")
        out.append("")
    return "\n".join(out)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_origin":
        sys.exit(origin_client(sys.argv[2], sys.argv[3], sys.argv[4]))
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--skip-build", action="store_true",
                    help="reuse target/bench/sim7k-* binaries when present")
    ap.add_argument("--only", default="size,steps,origin,wire,startup",
                    help="comma-separated sections")
    ap.add_argument("--no-nbiot", action="store_true",
                    help="skip the origin comparison on the NB-IoT latency profile")
    ap.add_argument("--sizes", default="1024,16384,1048576", help="payload sizes for `wire`")
    ap.add_argument("--out", type=Path, default=OUT_DIR / "compare.json",
                    help="where the JSON results go (default: target/bench/compare.json)")
    ap.add_argument("--sim7k", type=Path,
                    help="measure this sim7k binary instead of the fresh release build "
                         "(e.g. an older build, to compare versions)")
    args = ap.parse_args()
    reps = 3 if args.quick else 7
    only = set(args.only.split(","))
    results = {"machine": {"nproc": os.cpu_count(), "uname": " ".join(os.uname())}}
    if "size" in only or not args.sim7k:
        results["size"] = build(args.skip_build)
    if "size" not in only:
        results.pop("size", None)
    sim7k = args.sim7k.resolve() if args.sim7k else sim7k_bin("full")
    results["sim7k"] = str(sim7k)
    with tempfile.TemporaryDirectory(prefix="sim7k-bench-") as t:
        tmp = Path(t)
        if "steps" in only:
            results["steps"] = section_steps(sim7k, tmp, reps)
        if "origin" in only:
            results["origin"] = section_origin(sim7k, tmp, reps, not args.no_nbiot)
        if "wire" in only:
            results["wire"] = section_wire(sim7k, tmp, [int(x) for x in args.sizes.split(",")])
        if "startup" in only:
            results["startup"] = section_startup(sim7k, tmp, reps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(markdown(results))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
