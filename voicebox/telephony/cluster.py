"""``make cluster``: Kamailio's dispatcher on one port in front of N ``voicebox serve`` boxes.

    python -m voicebox.telephony.cluster --boxes 2 --host 127.0.0.1 --port 5060 --run-dir data/cluster

Box i listens on port+i (i = 1..N) with its own RTP range, metrics port and data directory
under the run directory; Kamailio (sip/kamailio/kamailio.cfg) listens on the port callers dial.
Ctrl-C or SIGTERM drains the boxes (each finishes its calls, see sip.drain_timeout_s), then
stops Kamailio. All of it runs in the foreground; logs are in the run directory.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from voicebox.config import ConfigError, load_config
from voicebox.telephony import kamailio
from voicebox.telephony.probe import sip_options

RTP_PORTS_PER_BOX = 2000


def box_command(i: int, host: str, port: int, rtp_port: int, data_dir: Path, config: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "voicebox", "serve", "--sip-host", host, "--sip-port", str(port),
           "--data-dir", str(data_dir), "--set", f"sip.rtp_port={rtp_port}",
           "--set", f"sip.rtp_port_range={RTP_PORTS_PER_BOX}", "--set", "metrics.port=0"]
    if config is not None:
        cmd += ["--config", str(config)]
    return cmd


def wait_ready(host: str, port: int, procs: list[subprocess.Popen], timeout_s: float) -> bool:
    """OPTIONS answered 200 (voicebox answers only once its models are loaded)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if any(p.poll() is not None for p in procs):
            return False
        status = sip_options(host, port, 0.5)
        if status is not None and status.startswith("SIP/2.0 200"):
            return True
        time.sleep(0.5)
    return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--boxes", type=int, default=2)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5060, help="the port callers dial (Kamailio)")
    p.add_argument("--config", type=Path, help="voicebox config shared by every box")
    p.add_argument("--run-dir", type=Path, default=Path("data/cluster"))
    p.add_argument("--rtp-port", type=int, default=40000, help="first RTP port of box 1")
    args = p.parse_args(argv)
    if args.boxes < 1:
        p.error("--boxes must be at least 1")
    try:
        max_calls = load_config(args.config).sip.max_calls
        kamailio.kamailio_exe()
    except (ConfigError, kamailio.KamailioMissing) as e:
        print(f"voicebox cluster: {e}", file=sys.stderr)
        return 2
    run = args.run_dir.resolve()
    run.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    boxes, procs = [], []
    for i in range(1, args.boxes + 1):
        box = kamailio.Box(args.host, args.port + i, max_calls)
        log = (run / f"box{i}.log").open("wb")
        rtp = args.rtp_port + (i - 1) * RTP_PORTS_PER_BOX
        procs.append(subprocess.Popen(box_command(i, box.host, box.port, rtp, run / f"box{i}", args.config),
                                      stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        boxes.append(box)
        print(f"box {i}: {box.uri} (log {run / f'box{i}.log'})", flush=True)
    proxy = None
    try:
        for box in boxes:
            if not wait_ready(box.host, box.port, procs, 600):
                print(f"voicebox cluster: {box.uri} did not come up; see the box logs in {run}", file=sys.stderr)
                return 1
        proxy = kamailio.start_dispatcher(run / "kamailio", args.host, args.port, boxes)
        if not wait_ready(args.host, args.port, [proxy], 30):
            print(f"voicebox cluster: kamailio did not come up:\n{kamailio.log_text(run / 'kamailio')[-3000:]}",
                  file=sys.stderr)
            return 1
        print(f"cluster ready: dial sip:agent@{args.host}:{args.port} ({len(boxes)} boxes; Ctrl-C drains and stops)",
              flush=True)
        gone: set[int] = set()
        while not stop.is_set():
            stop.wait(1)
            for i, proc in enumerate(procs, 1):
                if proc.poll() is not None and i not in gone:
                    gone.add(i)
                    print(f"box {i} exited ({proc.returncode}); kamailio sends new calls to the others", flush=True)
        return 0
    finally:
        print("draining the boxes...", flush=True)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait()
            except KeyboardInterrupt:
                proc.kill()
        if proxy is not None:
            kamailio.stop(proxy)


if __name__ == "__main__":
    sys.exit(main())
