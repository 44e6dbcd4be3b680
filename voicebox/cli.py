"""The ``voicebox`` command: serve, models."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from voicebox.config import ConfigError, load_config

log = logging.getLogger("voicebox")


def _serve(args: argparse.Namespace) -> int:
    from voicebox.agent_directory import load_directory
    from voicebox.engines import load_shared_engines
    from voicebox.logs import setup_logging
    from voicebox.memory import cap_malloc_arenas
    from voicebox.model_store import ModelError
    from voicebox.preflight import PortInUse, check_ports
    from voicebox.records.private_files import DataDirError, prepare_data_dir
    from voicebox.service_notify import ServiceNotifier
    from voicebox.thinking.llm_worker import ModelStartFailed

    cap_malloc_arenas()  # before any thread starts: keeps RSS flat over many calls (voicebox/memory.py)
    cfg = load_config(args.config, _overrides(args))
    setup_logging(cfg.log.level, cfg.log.format)
    service = ServiceNotifier()  # systemd's Type=notify; does nothing when not run by systemd
    if cfg.privacy.content == "full":
        log.warning("privacy.content=full: caller and agent words will be written to call records and logs")
    agents = load_directory(cfg)  # every agent file, checked before anything loads
    from voicebox.telephony.rx_data import GuardUnavailable, check_version
    try:
        check_version()  # before the models load: a wrong pjsua2 wheel is known at once
    except GuardUnavailable as e:
        print(f"voicebox: {e}", file=sys.stderr)
        return 2
    try:
        prepare_data_dir(cfg.data_dir)  # 0700, ours and writable by no one else: records are personal data
        check_ports(cfg)  # before the models load: a taken port is known in a moment, not after seconds
    except (DataDirError, PortInUse) as e:
        print(f"voicebox: {e}", file=sys.stderr)
        return 2
    service.status("loading models")
    try:
        engines = load_shared_engines(cfg, agents.agents)
    except ModelError as e:
        log.error("error model.missing %s", e, extra={"code": "model.missing"})
        return 2
    except ModelStartFailed as e:  # models.llm_on_failure = "exit"
        log.error("error %s", e, extra={"code": e.code})
        return 2

    from voicebox.pipeline import preload_call_modules
    from voicebox.records.retention import RetentionJob
    from voicebox.records.store import RecordStore
    from voicebox.telemetry.metrics import Metrics
    from voicebox.telephony.server import SipServer

    preload_call_modules(cfg.barge_in.echo_cancellation)
    sys.setswitchinterval(cfg.media.gil_switch_interval_ms / 1000)
    retention = RetentionJob(cfg.data_dir, cfg.privacy.retention_days)
    retention.start()  # expired records go before the first new call is written
    from voicebox.outcomes.service import OutcomeSetupError, service_for_serve

    try:
        outcomes = service_for_serve(cfg, agents.agents)
    except OutcomeSetupError as e:  # a missing webhook secret, an unusable database: say so, don't serve
        print(f"voicebox: {e}", file=sys.stderr)
        engines.close()
        retention.stop()
        return 2
    outcomes.start()  # resumes deliveries a previous run left pending
    store = RecordStore(cfg.data_dir)
    metrics = Metrics()
    metrics.add_agents(agents.agents)
    for worker in engines.workers():
        worker.on_restart = metrics.worker_restarts.labels(worker.name).inc
    server = SipServer(cfg, agents, engines, store, metrics, outcomes, service)
    # Transports open only now: OPTIONS get 200 once the models are loaded, which is how
    # tests and monitors know the agent is ready.
    try:
        if cfg.metrics.enabled:
            try:
                port = metrics.serve(cfg.metrics.host, cfg.metrics.port)
            except OSError as e:  # taken since the preflight check
                raise PortInUse(f"metrics.port: {cfg.metrics.host}:{cfg.metrics.port}/TCP cannot be bound "
                                f"({e.strerror or e}); set metrics.port to a free port") from None
            log.info("metrics on http://%s:%d/metrics", cfg.metrics.host, port)
        server.start()
    except (GuardUnavailable, PortInUse) as e:  # serving unguarded, or on half the ports, is not an option
        print(f"voicebox: {e}", file=sys.stderr)
        engines.close()
        outcomes.stop()
        retention.stop()
        return 2
    # SIGTERM drains (finishes calls in progress, see sip.drain_timeout_s); Ctrl-C stops at once.
    signal.signal(signal.SIGTERM, lambda *_: server.request_drain())
    signal.signal(signal.SIGINT, lambda *_: server.stop())
    # Ready only now: the transports answer OPTIONS and a stop from systemd drains. The SIP thread's
    # first loop turn follows at once, so nothing that arrived in between waits for long.
    service.ready(f"serving on sip:{cfg.sip.user}@{cfg.sip.host}:{cfg.sip.port}")
    server.run()
    engines.close()
    outcomes.stop()  # after the last call: its outcome is stored; the outbox resumes next start
    retention.stop()
    store.flush()
    log.info("stopped")
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """The command line's settings (``--sip-port``, ``--set`` ...): the last layer, over the environment."""
    overrides: dict[str, object] = {}
    if args.sip_port is not None:
        overrides["sip.port"] = args.sip_port
    if args.sip_host is not None:
        overrides["sip.host"] = args.sip_host
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    for item in args.set:
        key, value = _setting(item)
        overrides[key] = value
    return overrides


def _config(args: argparse.Namespace) -> int:
    """Print the configuration serve would run with (defaults < TOML < environment < command line)."""
    import json

    from voicebox.config import masked

    cfg = load_config(args.config, _overrides(args))
    print(json.dumps(masked(cfg.model_dump(mode="json", by_alias=True)), indent=2))
    return 0


def _setting(item: str) -> tuple[str, object]:
    """``--set sip.rtp_port=41000``: the value as TOML reads it, else as a plain string."""
    import tomllib

    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. sip.rtp_port=41000")
    try:
        return key.strip(), tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value


def _models(args: argparse.Namespace) -> int:
    from voicebox.model_store import assemble, check_files, load_manifest

    manifest = load_manifest()
    data_dir = _data_dir(args)
    bad = 0
    for m in manifest.model:
        size = sum(f.size for f in m.files)
        print(f"{m.name:18} {m.kind:4} {size / 1e6:7.1f} MB  packages: {', '.join(m.packages)}")
        if args.verify or args.assemble:
            for st in check_files(m, deep=args.verify):
                mark = "ok" if st.ok else f"FAIL {st.problem}"
                print(f"    {st.path}: {mark}")
                bad += 0 if st.ok else 1
        if args.assemble and m.assemble is not None:
            try:
                dest = assemble(m, data_dir)
                print(f"    assembled into {dest}")
            except Exception as e:  # noqa: BLE001 -- reported, counted, and the exit code says so
                print(f"    FAIL assembling: {e}")
                bad += 1
    if args.verify and not bad:
        bad += _check_generation(args)
    return 1 if bad else 0


def _check_generation(args: argparse.Namespace) -> int:
    """Each configured GGUF generates a few tokens in a child process; failures, one line each."""
    from voicebox.model_store import ModelError
    from voicebox.preflight import PortInUse, check_ports
    from voicebox.thinking.llm_check import check_generation, configured_ggufs
    from voicebox.thinking.llm_worker import ModelStartFailed

    overrides = {"data_dir": args.data_dir} if args.data_dir is not None else {}
    cfg = load_config(args.config, overrides)
    failed = 0
    try:
        ggufs = configured_ggufs(cfg)
    except ModelError as e:  # a tier an agent names that is not here: one line, not a traceback
        print(f"voicebox: {e}", file=sys.stderr)
        return 1
    for name, gguf in ggufs:
        try:
            print(f"  {check_generation(gguf, cfg, name).line()}")
        except ModelStartFailed as e:
            print(f"voicebox: {e}", file=sys.stderr)
            failed += 1
    return failed


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir is not None:
        return Path(args.data_dir)
    return load_config(args.config).data_dir


def _calls(args: argparse.Namespace) -> int:
    from voicebox.records.reader import find_call, format_calls, format_timeline, list_calls
    from voicebox.records.session_ids import SESSION_ID_LENGTH, is_session_prefix

    data_dir = _data_dir(args)
    if args.session is not None:
        if not is_session_prefix(args.session.lower()):
            print(f"voicebox: {args.session!r} is not a session id "
                  f"(1 to {SESSION_ID_LENGTH} hex digits)", file=sys.stderr)
            return 2
        path = find_call(data_dir, args.session)
        if path is None:
            print(f"voicebox: no single call matches {args.session!r} in {data_dir}", file=sys.stderr)
            return 1
        print(format_timeline(path))
    else:
        print(format_calls(list_calls(data_dir, args.limit)))
    return 0


def _purge(args: argparse.Namespace) -> int:
    from voicebox.records.retention import parse_age, purge

    try:
        age = parse_age(args.older_than)
    except ValueError as e:
        print(f"voicebox: {e}", file=sys.stderr)
        return 2
    n = purge(_data_dir(args), age)
    print(f"removed {n} files older than {args.older_than}")
    from voicebox.outcomes.store import OutcomeStore, outcomes_path

    if outcomes_path(_data_dir(args)).exists():  # outcomes hold personal data too: same retention
        store = OutcomeStore(outcomes_path(_data_dir(args)))
        print(f"removed {store.purge(age)} outcomes older than {args.older_than}")
        store.close()
    return 0


def _chat(args: argparse.Namespace) -> int:
    from voicebox.chat import run

    return run(args)


def _check(args: argparse.Namespace) -> int:
    from voicebox.agent_check import run

    return run(args)


def _config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML config file")
    p.add_argument("--sip-port", type=int)
    p.add_argument("--sip-host")
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set sip.rtp_port=41000 (repeatable)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="voicebox", description="A self-hosted, offline voice agent for SIP calls.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="answer SIP calls")
    _config_arguments(s)
    s.set_defaults(fn=_serve)
    e = sub.add_parser("config", help="print the configuration serve would use, secrets masked "
                       "(defaults < TOML < VOICEBOX_* environment < command line)")
    _config_arguments(e)
    e.set_defaults(fn=_config)
    m = sub.add_parser("models", help="list, verify and assemble the default models")
    m.add_argument("--verify", action="store_true",
                   help="check every file's size and sha256, and that each configured GGUF (the small model, "
                   "every configured agent's bigger tier) generates here")
    m.add_argument("--assemble", action="store_true", help="join split models into the data dir")
    m.add_argument("--config", type=Path, help="TOML config whose models and llama.cpp settings --verify checks")
    m.add_argument("--data-dir")
    m.set_defaults(fn=_models)
    c = sub.add_parser("calls", help="list recent calls, or show one call's timeline")
    c.add_argument("session", nargs="?", help="session id (or a unique prefix)")
    c.add_argument("--limit", type=int, default=20)
    c.add_argument("--config", type=Path)
    c.add_argument("--data-dir")
    c.set_defaults(fn=_calls)
    g = sub.add_parser("purge", help="delete call records and recordings older than an age")
    g.add_argument("--older-than", required=True, help="e.g. 30d, 12h")
    g.add_argument("--config", type=Path)
    g.add_argument("--data-dir")
    g.set_defaults(fn=_purge)
    t = sub.add_parser("chat", help="talk to an agent in the terminal (the call's brain, no phone); "
                       "reads caller lines from stdin")
    t.add_argument("agent", nargs="?", help="a dialled user from the config's [agents], a built-in agent name or an "
                   "agent TOML (default: the config's agent, or [agents]' default)")
    t.add_argument("--config", type=Path, help="TOML config (models, data dir)")
    t.add_argument("--data-dir", type=Path)
    t.add_argument("--no-model", action="store_true", help="skip the language models: their turns get the "
                   "no-information line, as on a call without them")
    t.add_argument("--quiet", action="store_true", help="hide which tier answered and the intent of each reply")
    t.set_defaults(fn=_chat)
    k = sub.add_parser("check", help="validate agent files and report what will go wrong on calls "
                       "(exit 0: no errors, 1: warnings with --strict, 2: errors, in any agent)")
    k.add_argument("agent", nargs="?", help="a dialled user from the config's [agents], a built-in agent name or an "
                   "agent TOML (default: every agent the config names)")
    k.add_argument("--config", type=Path, help="TOML config naming the agent")
    k.add_argument("--strict", action="store_true", help="exit 1 when there are warnings")
    k.add_argument("--folds", type=int, default=5, help="cross-validation folds over each intent's examples")
    k.add_argument("--no-router", action="store_true", help="skip the router's cross-validation")
    k.set_defaults(fn=_check)
    from voicebox.outcomes.cli import add_parser as add_outcomes_parser

    add_outcomes_parser(sub)  # voicebox outcomes: list, show, export, retry
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as e:
        print(f"voicebox: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
