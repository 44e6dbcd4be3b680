"""A real softphone (baresip) calls the agent, as a user of `make serve` would."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from tests.e2e.conftest import CORPUS, HOST, free_port
from voicebox.audio.wavio import read_wav, write_wav

pytestmark = pytest.mark.e2e


def test_baresip_softphone_hears_greeting_and_saturday_hours(agent_server, tmp_path, transcribe):
    exe = shutil.which("baresip")
    if exe is None:
        pytest.fail("baresip is not installed (apt-get install baresip; .ci/run does this)")
    # baresip's file source plays from the moment the call is up: wait out the greeting first.
    turn, _ = read_wav(CORPUS / "wav" / "hours_saturday_0.wav", 8000)
    source = tmp_path / "caller.wav"
    write_wav(source, np.concatenate([np.zeros(8000 * 5, np.int16), turn, np.zeros(8000 * 12, np.int16)]), 8000)
    rec = tmp_path / "rec"
    rec.mkdir()
    (tmp_path / "config").write_text(
        f"sip_listen {HOST}:{free_port()}\n"
        f"net_interface {HOST}\n"
        "audio_player alsa,null\naudio_alert alsa,null\n"
        f"audio_source aufile,{source}\n"
        "module_path /usr/lib/baresip/modules\n"
        "module g711.so\nmodule aufile.so\nmodule alsa.so\nmodule sndfile.so\n"
        "module_app account.so\nmodule_app menu.so\n"
        f"snd_path {rec}\n"
    )
    (tmp_path / "accounts").write_text(f"<sip:softphone@{HOST}>;regint=0;audio_codecs=PCMU\n")
    proc = subprocess.run(
        [exe, "-f", str(tmp_path), "-e", f"/dial {agent_server.uri}", "-t", "24"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert "Call established" in proc.stdout, proc.stdout[-2000:]
    heard_files = list(rec.glob("*-dec.wav"))  # sndfile's dump of what baresip decoded
    assert heard_files, proc.stdout[-2000:]
    heard = transcribe(heard_files[0])
    assert "riverside" in heard, heard
    assert "saturday" in heard and ("9" in heard or "nine" in heard), heard
