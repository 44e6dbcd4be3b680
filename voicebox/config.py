"""Service configuration: one TOML file, validated by pydantic.

Every tuning knob carries its unit in its name (``hangover_ms``, ``rtp_timeout_s``) so that a
reader of the file never has to guess. Errors name the offending field.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the field and the problem."""


def read_secret_file(path: Path) -> str:
    """A secret's file: its first line, trimmed; ValueError naming the file when it cannot be read
    or holds nothing."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ValueError(f"cannot read secret file {path}: {e.strerror}") from None
    if not lines or not lines[0].strip():
        raise ValueError(f"secret file {path} is empty")
    return lines[0].strip()


def secret_from_file(data: object, key: str) -> object:
    """``<key>_file`` read into ``key``, so a secret can be handed over the way systemd credentials
    and container secrets are (a file only the service can read) instead of written in the TOML."""
    if not isinstance(data, dict) or not data.get(f"{key}_file"):
        return data
    if data.get(key):
        raise ValueError(f"give {key} or {key}_file, not both")
    try:
        return {**data, key: read_secret_file(Path(data[f"{key}_file"]))}
    except ValueError as e:
        raise ValueError(f"{key}_file: {e}") from None


class _Strict(BaseModel):
    # Unknown keys are almost always typos ("hangover_m"); refusing them is kinder than ignoring.
    model_config = ConfigDict(extra="forbid")


class SipTlsConfig(_Strict):
    """SIP over TLS: present as ``[sip.tls]`` to listen; the certificate is the operator's."""

    port: int = Field(5061, ge=1, le=65535, description="TLS listening port.")
    cert_file: Path = Field(description="PEM certificate (chain) presented to peers.")
    key_file: Path = Field(description="PEM private key of cert_file.")
    ca_file: Path | None = Field(
        None, description="PEM CA list peers' certificates are checked against; unset: the system's CA store."
    )
    # Where voicebox is the TLS client (REGISTER to a trunk, a transfer's REFER target) it checks
    # the server by default (issue #17, item 6): an unverified registrar can be anyone on the path.
    verify_server: bool = Field(
        True,
        description="As a TLS client (registering with a TLS registrar), refuse a server whose certificate "
        "ca_file (or, without one, the system's CA store) does not vouch for, or that names another host. "
        "false: a self-signed lab PBX only (a warning is logged at start).",
    )
    verify_client: bool = Field(
        False, description="As a TLS server, require callers to present a certificate that ca_file vouches for."
    )

    @model_validator(mode="before")
    @classmethod
    def _verify_peer_was_split(cls, data: object) -> object:
        if isinstance(data, dict) and "verify_peer" in data:
            raise ValueError("verify_peer was split in two: verify_server (default true: a TLS server voicebox "
                             "connects to is checked) and verify_client (default false)")
        return data


class SipRegisterConfig(_Strict):
    """Register as an extension on a PBX (``[sip.register]``) and answer calls that arrive there."""

    registrar: str = Field(description="Registrar URI, e.g. 'sip:pbx.example.com' or 'sip:10.0.0.5:5060;transport=tcp'.")
    user: str = Field(description="Extension / user part of the address of record.")
    domain: str = Field("", description="Domain of the address of record; empty: the registrar's host.")
    auth_user: str = Field("", description="Digest user name; empty: same as user.")
    password: str = Field("", description="Digest password (empty: no credentials).")
    password_file: Path | None = Field(None, description="A file holding the password (its first line), instead of password.")
    realm: str = Field("*", description="Digest realm the credentials are for; '*' answers any realm.")
    expiry_s: int = Field(300, ge=10, le=86400, description="Registration lifetime asked for; refreshed before it ends.")
    retry_min_s: float = Field(5.0, ge=1, le=3600, description="First wait before re-registering after a failure.")
    retry_max_s: float = Field(300.0, ge=1, le=86400, description="Longest wait between attempts (the wait doubles up to this).")

    @model_validator(mode="before")
    @classmethod
    def _password_from_file(cls, data: object) -> object:
        return secret_from_file(data, "password")

    @model_validator(mode="after")
    def _retry_bounds(self) -> "SipRegisterConfig":
        if self.retry_min_s > self.retry_max_s:
            raise ValueError("retry_min_s must not exceed retry_max_s")
        if not self.registrar.startswith(("sip:", "sips:")):
            raise ValueError("registrar must be a sip: or sips: URI")
        return self


class SipNatConfig(_Strict):
    """For a voicebox on a LAN behind NAT. RTP is symmetric always (pjmedia follows the source)."""

    contact_rewrite: bool = Field(
        False, description="Rewrite the registered Contact to the address the registrar saw (received/rport)."
    )
    via_rewrite: bool = Field(False, description="Put that address in the Via of later requests too.")
    sdp_nat_rewrite: bool = Field(False, description="Advertise that address in SDP as well.")
    keepalive_s: int = Field(0, ge=0, le=3600, description="UDP keep-alive to the registrar every this often (0: off).")


class SipConfig(_Strict):
    host: str = Field("127.0.0.1", description="Address SIP and RTP bind to and advertise.")
    port: int = Field(5060, ge=1, le=65535, description="SIP listening port (UDP and TCP).")
    tcp: bool = Field(True, description="Also listen on TCP at the same port.")
    rtp_port: int = Field(40000, ge=1024, le=65000, description="First RTP port.")
    rtp_port_range: int = Field(2000, ge=16, le=20000, description="How many RTP ports to use.")
    user: str = Field("agent", description="User part of the agent's own URI.")
    max_calls: int = Field(4, ge=1, le=24, description="Calls answered at once; more are refused.")
    busy_status: Literal[486, 503] = Field(503, description="Answer to INVITEs past max_calls.")
    retry_after_s: int = Field(30, ge=1, le=3600, description="Retry-After sent with 503.")
    rtp_timeout_s: float = Field(10.0, gt=0, description="Hang up after this long without RTP.")
    hold_timeout_s: float = Field(
        300.0, gt=0,
        description="While the caller holds the call (re-INVITE sendonly/inactive), hang up after this "
                    "long without RTP instead of rtp_timeout_s (a hold may send no audio at all).",
    )
    max_call_s: float = Field(600.0, gt=0, description="Hang up calls longer than this.")
    # The edge (voicebox/telephony/admission.py, sip_guard.py): who may talk to us, and how much.
    admit_cpu_max_fraction: float = Field(
        0.9, gt=0, le=1.0,
        description="With a call up, refuse new ones while the process uses this fraction of its cores or more (1.0: off).",
    )
    load_window_s: float = Field(5.0, ge=1, le=120, description="CPU use is measured over this window.")
    source_requests_per_s: float = Field(
        50.0, ge=0,
        description="Out-of-dialog requests per second allowed from one source address (0: no limit). "
        "Behind a proxy every call comes from its address: raise this or set 0.",
    )
    source_burst_requests: int = Field(100, ge=1, description="Burst allowed above source_requests_per_s.")
    # Each INVITE that reaches pjsua opens RTP sockets at once (see telephony/media_budget.py), so
    # new calls get a tighter bucket of their own, checked before any media exists.
    source_invites_per_s: float = Field(
        5.0, ge=0,
        description="New calls (INVITEs) per second allowed from one source address; past it 503 + Retry-After "
        "(0: no limit). Behind a proxy every call comes from its address: raise this or set 0.",
    )
    source_burst_invites: int = Field(10, ge=1, description="Burst allowed above source_invites_per_s.")
    max_tracked_sources: int = Field(10000, ge=16, le=1_000_000, description="Source addresses the rate limiter remembers.")
    # Each TCP/TLS connection holds one of the SIP ioqueue's 64 slots for as long as its peer
    # keeps it open (voicebox/telephony/connection_budget.py).
    max_connections_per_source: int = Field(
        8, ge=1, le=40, description="Incoming TCP/TLS connections kept from one source address; more are closed."
    )
    max_connections: int = Field(
        40, ge=1, le=48,
        description="Incoming TCP/TLS connections kept in all; past it the oldest that never sent a request "
        "is closed (or the new one).",
    )
    allow_networks: list[str] = Field(
        default_factory=list, description="If set, only these source networks (CIDR) get any answer; others are dropped."
    )
    auth_user: str = Field("", description="If set, INVITEs need digest credentials for this user.")
    auth_password: str = Field("", description="Password for auth_user.")
    auth_password_file: Path | None = Field(None, description="A file holding auth_password (its first line), instead of it.")
    auth_realm: str = Field("voicebox", description="Digest realm.")
    auth_nonce_lifetime_s: int = Field(300, ge=10, le=86400, description="A digest nonce is good for this long.")
    session_expires_s: int = Field(1800, ge=90, le=86400, description="RFC 4028 session interval we ask for.")
    session_min_expires_s: int = Field(90, ge=90, le=86400, description="Shortest session interval accepted (Min-SE).")
    codecs: list[Literal["G722", "PCMU", "PCMA"]] = Field(
        default_factory=lambda: ["G722", "PCMU", "PCMA"],
        description="Codecs offered/accepted, most preferred first.",
    )
    srtp: Literal["off", "optional", "mandatory"] = Field(
        "optional", description="SRTP (SDES keys) on calls over TLS: used when the peer offers it / never / "
        "required (see sdes_without_tls for UDP/TCP)."
    )
    drain_timeout_s: float = Field(
        600.0, ge=0, description="On SIGTERM, wait this long for calls in progress to end before hanging up."
    )
    sdes_without_tls: bool = Field(
        False,
        description="Let calls signalled over plain UDP/TCP use SRTP too. Its SDES keys travel in the SDP, "
        "readable by anyone on the path; off, SRTP is offered and accepted over TLS only and a plain call "
        "that offers nothing but SRTP gets 488. On, a warning is logged at start.",
    )
    tls: SipTlsConfig | None = Field(None, description="Listen on TLS too (see [sip.tls]).")
    # "register" is a BaseModel attribute: the field has another name, the file keeps [sip.register].
    registration: SipRegisterConfig | None = Field(
        None, alias="register", description="Register with a PBX (see [sip.register])."
    )
    nat: SipNatConfig = Field(default_factory=SipNatConfig)

    @field_validator("codecs")
    @classmethod
    def _codecs_not_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one codec is needed")
        if len(set(v)) != len(v):
            raise ValueError("a codec is listed twice")
        return v

    @field_validator("allow_networks")
    @classmethod
    def _networks_are_cidrs(cls, v: list[str]) -> list[str]:
        import ipaddress

        for cidr in v:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a network (CIDR, e.g. 10.0.0.0/8)") from None
        return v

    @model_validator(mode="before")
    @classmethod
    def _auth_password_from_file(cls, data: object) -> object:
        return secret_from_file(data, "auth_password")

    @model_validator(mode="after")
    def _edge_consistent(self) -> "SipConfig":
        if bool(self.auth_user) != bool(self.auth_password):
            raise ValueError("auth_user and auth_password go together")
        if self.session_min_expires_s > self.session_expires_s:
            raise ValueError("session_min_expires_s must not exceed session_expires_s")
        return self


class MediaConfig(_Strict):
    clock_rate_hz: Literal[8000, 16000] = Field(
        16000, description="Conference bridge rate; 16 kHz keeps G.722's wideband audio."
    )
    frame_ms: Literal[10, 20] = Field(20, description="Bridge frame length.")
    inbound_buffer_ms: int = Field(2000, ge=200, description="Caller audio kept before the listener reads it.")
    playout_buffer_ms: int = Field(30000, ge=1000, description="Agent audio queued for the caller.")
    jitter_buffer_ms: int | None = Field(
        None, ge=10, le=1000,
        description="Fixed receive jitter buffer (its prefetch, initial, minimum and maximum). "
        "Unset: pjmedia's adaptive default, sized for a WAN (40-200 ms measured on loopback).",
    )
    gil_switch_interval_ms: float = Field(
        1.0, ge=0.5, le=50.0,
        description="How long a Python thread may hold the GIL while another waits for it (CPython's "
        "switch interval, 5 ms by default). The bridge clock's frame callbacks wait for the GIL: with 4 "
        "calls streaming model replies on 2 cores, 5 ms let 7 frame requests come over 10 ms late and "
        "the longest gap reach 40 ms; 1 ms, 0-4 and 29-32 ms in two runs (benchmarks/results/gil-switch.md).",
    )


class ModelsConfig(_Strict):
    """Where each stage's model comes from: a manifest name, or a path to the user's own model."""

    stt: str = Field("whisper-tiny-en", description="Manifest name or path to a CTranslate2 whisper dir.")
    llm: str = Field("smollm2-135m", description="Manifest name or path to a GGUF file.")
    tts: str = Field("piper-joe-medium", description="Manifest name or path to a Piper .onnx voice.")
    stt_threads: int = Field(2, ge=1, le=64)
    stt_final_context: Literal["auto", "fit", "full"] = Field(
        "auto",
        description="Encoder window of final decodes: fitted to the turn (fast), whisper's full 30 s, "
        "or fitted with a full re-decode when the fitted one is unreliable.",
    )
    stt_final_beam: int = Field(
        1, ge=1, le=10,
        description="Beam width of final decodes (partials are always greedy). Wider beams cost decode "
        "time on every turn: on whisper base through G.711, beam 5 took the corpus WER from 15.8% to "
        "15.0% for 65 ms more per final decode (p50, 2 cores).",
    )
    llm_threads: int = Field(2, ge=1, le=64)
    llm_context_tokens: int = Field(2048, ge=256, le=32768)
    llm_max_reply_tokens: int = Field(60, ge=8, le=1024)
    llm_temperature: float = Field(0.2, ge=0.0, le=2.0)
    llm_process: bool = Field(
        True, description="Run the GGUF models in a supervised worker process, restarted if it dies or hangs "
        "(false: in this process, where a crash ends the service).",
    )
    llm_hang_timeout_ms: int = Field(
        8000, ge=200, le=120000,
        description="A model worker silent this long during a reply is killed and restarted; well above "
        "a token gap or a prompt's prefill on a loaded 2-core box.",
    )
    llm_cpu_exclude: list[str] = Field(
        default_factory=lambda: ["sapphirerapids"],
        description="llama.cpp CPU variants never to run (portable build). sapphirerapids is the only one "
        "with AMX kernels, which faulted on a Xeon that allows AMX (ldtilecfg, general protection fault); "
        "its AVX-512 neighbours (zen4, cooperlake, icelake) run on such a CPU instead.",
    )
    llm_cpu_variant: str = Field(
        "auto", description="Run this llama.cpp CPU variant (e.g. haswell), or auto: the best this CPU supports."
    )
    llm_extra_buffers: bool = Field(
        True, description="Let llama.cpp repack weights into extra buffer types for faster kernels; false is "
        "the escape hatch if those kernels fault on a CPU.",
    )
    llm_on_failure: Literal["without_model", "exit"] = Field(
        "without_model",
        description="A model that cannot generate at start: answer calls without it (every turn that needed "
        "it gets the honest no-information line and the offer of a person), or exit with status 2.",
    )


class VadConfig(_Strict):
    aggressiveness: int = Field(2, ge=0, le=3, description="webrtcvad mode: 0 lenient .. 3 strict.")
    start_ms: int = Field(120, ge=20, le=2000, description="Voiced audio needed to start a turn.")
    hangover_ms: int = Field(700, ge=100, le=5000, description="Silence that ends a turn, until its transcript is judged.")
    short_hangover_ms: int = Field(
        300, ge=100, le=5000, description="Silence that ends a finished-sounding turn (never more than hangover_ms)."
    )
    long_hangover_ms: int = Field(
        1400, ge=100, le=10000, description="Silence that ends an unfinished-sounding turn (never less than hangover_ms)."
    )
    min_turn_ms: int = Field(250, ge=0, le=5000, description="Shorter voiced turns are ignored.")
    noise_margin_db: float = Field(
        6.0, ge=0.0, le=30.0,
        description="A frame counts as speech only this far above the line's noise floor (the quietest "
        "frame of the last noise_window_ms); 0 turns the check off. Steady background noise then never "
        "keeps a turn open.",
    )
    noise_window_ms: int = Field(1000, ge=100, le=10000, description="How far back the noise floor looks.")
    max_turn_ms: int = Field(20000, ge=1000, le=120000, description="A turn is cut at this length.")
    preroll_ms: int = Field(200, ge=0, le=2000, description="Audio kept from before speech onset.")
    speculate_after_ms: int = Field(
        100, ge=20, le=5000,
        description="Silence after which the turn so far is transcribed speculatively (kept if the turn ends).",
    )
    partial_every_ms: int = Field(
        400, ge=0, le=5000,
        description="Cadence of partial decodes while the caller speaks (0: none). Partials are skipped "
        "whenever a final decode is running or waiting.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> "VadConfig":
        if self.min_turn_ms >= self.max_turn_ms:
            raise ValueError("min_turn_ms must be below max_turn_ms")
        if self.speculate_after_ms >= self.hangover_ms:
            raise ValueError("speculate_after_ms must be below hangover_ms")
        return self


class LogConfig(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = Field(
        "text",
        description="text: one line per record for people; json: one JSON object per line (timestamp, level, "
        "logger, message, and session, agent, code, stage where the record has them) for a log shipper.",
    )


class PrivacyConfig(_Strict):
    content: Literal["metadata", "redacted", "full"] = Field(
        "metadata",
        description="What of the caller's and agent's words reaches records and logs: nothing, "
        "words with personal data replaced by [CARD], [PHONE]..., or everything.",
    )
    retention_days: float = Field(30.0, gt=0, le=3650, description="Call records and recordings older than this are deleted.")
    recording: bool = Field(False, description="Record calls (stereo WAV); caller turns about payment are blanked.")


class MetricsConfig(_Strict):
    enabled: bool = True
    host: str = Field("127.0.0.1", description="Prometheus endpoint address; keep it local unless scraped remotely.")
    port: int = Field(9464, ge=0, le=65535, description="0 picks a free port (printed at start-up).")


class BudgetConfig(_Strict):
    """Per-turn latency budget in milliseconds; every turn is recorded against it."""

    endpoint_ms: int = Field(800, ge=1, description="Caller's last voiced frame → end-of-turn decision.")
    transcript_ms: int = Field(600, ge=1, description="Decision → final transcript.")
    first_token_ms: int = Field(900, ge=1, description="Decision → first sentence of the reply text.")
    first_audio_ms: int = Field(1200, ge=1, description="Decision → first reply audio playing.")
    voice_to_voice_ms: int = Field(2000, ge=1, description="Caller's last voiced frame → first reply audio.")


class BargeInConfig(_Strict):
    """The caller talking over the agent: echo out first, then a little real speech stops it."""

    enabled: bool = Field(True, description="Stop the agent when the caller talks over it.")
    echo_cancellation: bool = Field(True, description="Remove the agent's own voice from the caller audio (WebRTC AEC3).")
    min_speech_ms: int = Field(
        200, ge=40, le=2000, description="Loud voiced caller audio, while the agent speaks, that stops it."
    )
    energy_floor_dbfs: float = Field(
        -50.0, ge=-90.0, le=0.0,
        description="Frames quieter than this never count as speech (echo residue, line hiss).",
    )
    resume_after_noise: bool = Field(
        True, description="If the interruption holds no words (a cough, 'mm-hm'), resume the reply where it paused."
    )
    echo_correlation_max: float = Field(
        0.6, ge=0.0, le=1.0,
        description="Caller audio whose last 100 ms match what the agent played this closely (peak normalized "
        "cross-correlation over delays up to echo_delay_max_ms) is its echo, not the caller; 1.0 turns the check off.",
    )
    echo_delay_max_ms: int = Field(
        600, ge=100, le=2000, description="The longest round trip, agent playout to its echo, the echo check looks at."
    )


class TestingConfig(_Strict):
    """Test-only switches for fault injection; never set them on a real line."""

    fail_stage: Literal["", "stt", "llm", "tts"] = Field(
        "", description="Make this stage raise on every turn (tts: every reply synthesized on the call; the "
        "phrases synthesized at start still play).",
    )
    slow_llm_ms: int = Field(
        0, ge=0, le=60000, description="Delay the language model's first token by this much (tests fillers)."
    )
    llm_worker_fault: Literal["", "die", "hang", "segv"] = Field(
        "", description="The LLM worker process exits, stops answering, or kills itself with SIGSEGV (as a "
        "faulting kernel would), after the first token of one request.",
    )
    llm_worker_fault_on_request: int = Field(
        1, ge=0, le=100000,
        description="Which request to the LLM worker faults (counted from 1; 0: its warm-up, at every start).",
    )


# A dialled user is matched case-insensitively (an operator writes "sales", a PBX may send
# "Sales"); what a SIP user part may hold that a config key would want: letters, digits, + . _ ~ -.
_DIALLED_USER = re.compile(r"^[A-Za-z0-9+][A-Za-z0-9._~+-]*$")


class AgentsConfig(_Strict):
    """``[agents]``: which agent answers each dialled user (the INVITE's Request-URI user part).

    Every other key is a dialled user and its value an agent (built-in name or path), e.g.
    ``sales = "/etc/voicebox/sales.toml"``. ``default`` is the user whose agent answers users not listed;
    without it they get 404 Not Found.
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str] = Field(init=False)  # the dialled users, as written

    default: str = Field("", description="Dialled user whose agent answers users not listed (empty: 404).")

    @model_validator(mode="after")
    def _routes_usable(self) -> "AgentsConfig":
        routes = self.__pydantic_extra__ or {}
        if not routes:
            raise ValueError('list at least one dialled user and its agent, e.g. reception = "my_agent"')
        seen: dict[str, str] = {}
        for user, agent in routes.items():
            if not _DIALLED_USER.match(user):
                raise ValueError(f"{user!r} is not a SIP user part (letters, digits, + . _ ~ -)")
            if not agent.strip():
                raise ValueError(f"{user}: agent name or path is empty")
            if user.lower() in seen:
                raise ValueError(f"{seen[user.lower()]!r} and {user!r} are the same user (matched ignoring case)")
            seen[user.lower()] = user
        if self.default and self.default.lower() not in seen:
            raise ValueError(f"default = {self.default!r} is not one of the users listed ({', '.join(routes)})")
        return self

    def routes(self) -> dict[str, str]:
        """Dialled user (lower case) -> agent name or path."""
        return {user.lower(): agent for user, agent in (self.__pydantic_extra__ or {}).items()}

    def users(self) -> dict[str, str]:
        """Dialled user, as the config writes it -> agent name or path (for messages and headings)."""
        return dict(self.__pydantic_extra__ or {})


def default_agent() -> str:
    """The built-in agent that answers when the config names none (``make serve``). It is named
    by the data file ``voicebox/agents/DEFAULT``, beside the agents, so no business is in the code."""
    return (Path(__file__).parent / "agents" / "DEFAULT").read_text(encoding="utf-8").strip()


class Config(_Strict):
    agent: str = Field(
        default_factory=default_agent,
        description="Built-in agent name or path to an agent TOML; answers every dialled user (unless [agents]).",
    )
    agents: AgentsConfig | None = Field(
        None, description="Several agents on one server, chosen by the dialled user (see [agents])."
    )
    data_dir: Path = Field(Path("data"), description="Where assembled models and call records live.")
    sip: SipConfig = Field(default_factory=SipConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    vad: VadConfig = Field(default_factory=VadConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    barge_in: BargeInConfig = Field(default_factory=BargeInConfig)
    testing: TestingConfig = Field(default_factory=TestingConfig)

    @model_validator(mode="after")
    def _one_way_to_name_agents(self) -> "Config":
        if self.agents is not None and "agent" in self.model_fields_set:
            raise ValueError("set either agent (one agent for every dialled user) or [agents], not both")
        return self


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)


def read_toml(path: Path, what: str) -> dict:
    """A TOML file's contents; ConfigError saying which file and what is wrong with it."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


SECRET_KEYS = ("password", "auth_password")  # what `voicebox config` never prints


def masked(settings: dict) -> dict:
    """A dumped configuration with every secret that is set replaced by asterisks."""
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            value = masked(value)
        elif key in SECRET_KEYS and value:
            value = "********"
        out[key] = value
    return out


ENV_PREFIX = "VOICEBOX_"
ENV_NESTED = "__"  # VOICEBOX_SIP__PORT is sip.port; VOICEBOX_SIP__REGISTER__USER is sip.register.user


def from_environment(environ: Mapping[str, str] | None = None) -> dict:
    """The settings given as ``VOICEBOX_*`` environment variables, as the TOML would nest them.

    Read by pydantic-settings: names are case-insensitive, ``__`` separates sections, and a list
    or table is written as JSON (``VOICEBOX_SIP__CODECS='["PCMU"]'``). A misspelt key inside a
    known section is refused like one in the file; other ``VOICEBOX_`` names are not ours.
    """
    from pydantic_settings import EnvSettingsSource

    source = EnvSettingsSource(Config, env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED,
                               case_sensitive=False)
    if environ is not None:
        source.env_vars = {k.lower(): v for k, v in environ.items()}
    return source()


def _merge(base: dict, over: dict) -> dict:
    """``over`` laid on ``base``, section by section."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: Path | None = None, overrides: dict | None = None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Defaults, then the TOML at ``path``, then ``VOICEBOX_*`` environment variables, then the
    dotted ``overrides`` (the command line): each layer wins over the ones before it.

    ``environ``: the environment to read (``os.environ`` when None). Raises ConfigError with a
    message naming the field on any problem.
    """
    raw: dict = {}
    sources = ["defaults"]
    if path is not None:
        sources = [str(path)]
        raw = read_toml(path, "config file")
    env = from_environment(environ)
    if env:
        sources.append(f"{ENV_PREFIX}* environment")
        raw = _merge(raw, env)
    cli: dict = {}
    for dotted, value in (overrides or {}).items():
        node = cli
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    raw = _merge(raw, cli)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, " + ".join(sources))) from None
