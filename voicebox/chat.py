"""``voicebox chat``: try an agent file in the terminal, with the brain a call uses.

Typed lines stand in for the caller's transcripts; the replies are what the caller would hear.
The Dialog is the very one ``pipeline.py`` builds (router, booking, model tiers, honest
fallbacks), and each Decision is acted on the way ``CallPipeline._handle_turn`` acts on it, so a
business owner sees on the screen what a caller would get on the phone. What a call does that
text cannot (a transfer, a hang-up, a completed form) is shown as an event in brackets.

The chat has no outcome store: a completed booking, message or callback request is held in
memory for the session only (so a time booked once is taken for the rest of the chat) and shown
as ``[outcome booking: ... (chat: not saved)]``.

Only the intent router and the language model are loaded, the model in its worker process as
``serve`` runs it (``--no-model`` skips it); no speech models.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

from voicebox.agent import AgentConfig
from voicebox.config import Config
from voicebox.outcomes.draft import OutcomeDraft
from voicebox.thinking.dialog import Decision, Dialog
from voicebox.thinking.intent_router import IntentRouter
from voicebox.thinking.language_model import ChatModel

log = logging.getLogger("voicebox.chat")

KEY_COMMAND = "/press"  # "/press 0": a DTMF key, as the caller's keypad would send it


@dataclass
class Style:
    """How the transcript looks: annotations dimmed on a terminal, plain brackets in a pipe."""

    quiet: bool = False  # hide the per-reply tier/intent annotations (events are always shown)
    color: bool = False

    def dim(self, text: str) -> str:
        return f"\x1b[2m{text}\x1b[0m" if self.color else text


class ChatOutcomes:
    """The chat's outcome sink: completed forms kept in memory, never saved anywhere."""

    def __init__(self) -> None:
        self.kept: list[OutcomeDraft] = []

    def is_free(self, agent: str, start: dt.datetime, end: dt.datetime) -> bool:
        return not any(d.agent == agent and d.start is not None and d.end is not None and start < d.end
                       and d.start < end for d in self.kept)

    def record(self, draft: OutcomeDraft) -> str:
        self.kept.append(draft)
        return f"chat-{len(self.kept)}"


class ChatSession:
    """One conversation: the greeting, then one caller line at a time, until a hang-up."""

    def __init__(self, dialog: Dialog, out: TextIO, style: Style) -> None:
        self.dialog = dialog
        self.agent: AgentConfig = dialog.agent
        self.out = out
        self.style = style
        self.hung_up = False
        self.failed = False  # an internal error ended the conversation, as it would end a call

    # -- what the caller sees ------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.out.write(f"agent: {text}\n")
        self.out.flush()

    def _event(self, text: str) -> None:
        self.out.write(self.style.dim(f"[{text}]") + "\n")
        self.out.flush()

    def _note(self, tier: str, intent: str | None, confidence: float, reason: str) -> None:
        """Which tier answered, the intent with its confidence, and why when it is not plain."""
        if self.style.quiet:
            return
        what = intent or "no intent"
        if confidence:
            what += f" {confidence:.2f}"
        why = f"; {reason}" if reason and reason != "intent" else ""
        self.out.write(self.style.dim(f"  [{tier or '-'}: {what}{why}]") + "\n")
        self.out.flush()

    # -- the conversation ----------------------------------------------------------------------
    def greet(self) -> None:
        self._say(self.agent.greeting)

    def turn(self, text: str) -> None:
        """One caller line, acted on as ``CallPipeline._handle_turn`` acts on a transcript.

        Typed text has no recognizer confidence, so it is decided as a sure transcript: the
        read-back of a doubtful day or name ("I heard Tuesday. Is that right?") never happens here.
        """
        text = text.strip()
        if not text or self.hung_up:
            return  # on a call, a turn with no words gets no answer either
        if text.startswith(KEY_COMMAND):
            self._key(text[len(KEY_COMMAND):].strip())
            return
        d = self.dialog.decide(text)
        if d.kind != "model":
            self.dialog.remember(text, d.text)  # model replies remember themselves
        if d.kind == "transfer" or (d.kind == "give_up" and self.agent.after_reprompts == "transfer"):
            self._transfer(d.text, d)
        elif d.kind in ("hangup", "give_up"):
            self._say(d.text)
            self._note(d.tier, d.intent, d.confidence, d.reason)
            self._hang_up()
        elif d.kind in ("say", "reprompt"):
            self._say(d.text)
            self._note(d.tier, d.intent, d.confidence, d.reason)
            if d.outcome is not None:
                self._event(f"outcome {d.outcome.kind}: {d.outcome.summary} (chat: not saved)")
        else:
            self._model_reply(text, d)

    def _transfer(self, announcement: str, d: Decision | None) -> None:
        # As on a call: with no target configured the caller is told so, and the call goes on.
        target = self.agent.actions.transfer_uri
        self._say(announcement if target else self.agent.actions.no_transfer)
        if d is not None:
            self._note(d.tier, d.intent, d.confidence, d.reason)
        if target:
            # A call would end for the agent here; the chat goes on so more can be tried.
            self._event(f"transfer to {target}")

    def _hang_up(self) -> None:
        self._event("hang up")
        self.hung_up = True

    def _model_reply(self, text: str, d: Decision) -> None:
        from voicebox.thinking.llm_worker import WorkerFailed

        said = False
        try:
            for sentence in self.dialog.model_reply(text, d.tier, threading.Event()):
                # Sentences are shown as they are let through, as they would be spoken.
                self.out.write(("agent: " if not said else " ") + sentence)
                self.out.flush()
                said = True
        except WorkerFailed as e:
            # The worker died or hung and is restarting: this turn gets the apology, the
            # conversation goes on (as on a call).
            if said:
                self.out.write("\n")
            self.dialog.remember(text, self.agent.model_failed)
            self._say(self.agent.model_failed)
            self._note("apology", d.intent, d.confidence, e.code)
            return
        except Exception:
            log.exception("reply failed")
            if said:
                self.out.write("\n")
            self._say(self.agent.apology)  # a call ends with this apology: so does the chat
            self._hang_up()
            self.failed = True
            return
        if said:
            self.out.write("\n")
        self._note(self.dialog.last_tier, d.intent, d.confidence, self.dialog.last_reason)

    def _key(self, key: str) -> None:
        """A key press, acted on as ``CallPipeline._handle_key`` acts on a DTMF event."""
        action = self.agent.actions.dtmf.get(key)
        self._event(f"key {key or '?'}: {action or 'no action'}")
        if action == "transfer":
            self._transfer(self.agent.actions.transfer_announcement, None)
        elif action == "hangup":
            self._say(self.agent.goodbye)
            self._hang_up()
        elif action == "repeat" and self.dialog.history:
            self._say(self.dialog.history[-1]["content"])


def caller_lines(stdin: TextIO, out: TextIO, interactive: bool) -> Iterator[str]:
    """The caller's lines: prompted for on a terminal, else read and echoed, so a piped run's
    output reads as the whole conversation."""
    if interactive:
        while True:
            try:
                yield input("caller: ")
            except EOFError:
                out.write("\n")
                return
    for line in stdin:
        line = line.rstrip("\n")
        if line.strip():
            out.write(f"caller: {line}\n")
        yield line


def converse(session: ChatSession, lines: Iterable[str]) -> int:
    """Run the conversation to a hang-up or the end of input; the exit status."""
    session.greet()
    for line in lines:
        session.turn(line)
        if session.hung_up:
            break
    return 1 if session.failed else 0


def run(args: argparse.Namespace) -> int:
    """The ``voicebox chat`` command."""
    from voicebox.agent import agent_file, load_agent
    from voicebox.agent_directory import choose_agent
    from voicebox.config import ConfigError, load_config
    from voicebox.logs import setup_logging

    overrides = {"data_dir": args.data_dir} if args.data_dir is not None else {}
    cfg = load_config(args.config, overrides)
    # Warnings only, on stderr: the transcript on stdout stays clean enough to diff in tests.
    setup_logging("WARNING")
    try:
        # A dialled user from [agents] reaches the agent a call to that user would reach.
        agent_name = choose_agent(cfg, args.agent, "chat")
    except ConfigError as e:
        raise ConfigError(f"{args.config}: {e}" if args.config is not None else str(e)) from None
    agent = load_agent(agent_name)
    router = IntentRouter.for_agent(agent)  # as engines.load_engines builds it
    small, large = (None, None) if args.no_model else _load_models(agent, cfg)
    interactive = sys.stdin.isatty()
    style = Style(quiet=args.quiet, color=sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    try:
        dialog = Dialog(agent, router, small, cfg.models, large, outcomes=ChatOutcomes(), session_id="chat",
                        agent_id=agent_file(agent_name).stem)
        session = ChatSession(dialog, sys.stdout, style)
        return converse(session, caller_lines(sys.stdin, sys.stdout, interactive))
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        return 130
    finally:
        for model in (small, large):
            close = getattr(model, "close", None)  # worker processes; a remote model has none
            if close is not None:
                close()


def _load_models(agent: AgentConfig, cfg: Config) -> tuple[ChatModel | None, ChatModel | None]:
    """The small model, in its worker process as ``serve`` runs it, and the agent's bigger tier.

    A model that cannot run here is reported and left out: its turns then get the honest
    no-information line, as on a call with ``models.llm_on_failure = "without_model"``.
    """
    from voicebox.engines import load_large, local_model
    from voicebox.model_store import ModelError, resolve
    from voicebox.thinking.dialog import system_prompt
    from voicebox.thinking.llm_worker import ModelStartFailed

    warm = [{"role": "system", "content": system_prompt(agent)}, {"role": "user", "content": "Hi"}]
    small: ChatModel | None = None
    try:
        small = local_model(resolve(cfg.models.llm, "llm", cfg.data_dir), cfg, "small", warm)[0]
    except (ModelError, ModelStartFailed) as e:
        print(f"voicebox chat: without the small model: {e}", file=sys.stderr)
    try:
        large = load_large(agent, cfg)
    except (ModelError, ModelStartFailed) as e:
        print(f"voicebox chat: without the large tier: {e}", file=sys.stderr)
        large = None
    return small, large
