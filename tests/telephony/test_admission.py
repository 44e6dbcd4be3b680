import os
import time

from tests.busy_child import busy_child
from voicebox.config import SipConfig
from voicebox.telephony.admission import Admission, CpuLoad, NetworkFilter, SourceLimiter


def test_bucket_allows_burst_then_rate():
    lim = SourceLimiter(rate_per_s=2, burst=3, max_sources=16)
    assert [lim.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert not lim.allow("a", 0.1)  # 0.2 tokens back: not enough
    assert lim.allow("a", 0.6)  # one token after 0.5 s
    assert lim.allow("b", 0.6), "another source has its own bucket"


def test_first_refusal_of_a_run_is_marked_once():
    lim = SourceLimiter(rate_per_s=1, burst=1, max_sources=16)
    assert [lim.check("a", 0.0) for _ in range(3)] == ["ok", "limited_first", "limited"]
    assert lim.check("a", 2.0) == "ok" and lim.check("a", 2.0) == "limited", "still the same flood"
    assert lim.check("a", 20.0) == "ok" and lim.check("a", 20.0) == "limited_first", "a new one, after a quiet time"


def test_limiter_forgets_oldest_source_beyond_bound():
    lim = SourceLimiter(rate_per_s=1, burst=1, max_sources=16)
    for i in range(100):
        lim.allow(f"10.0.0.{i}", 0.0)
    assert len(lim) == 16


def test_zero_rate_disables_limit():
    lim = SourceLimiter(rate_per_s=0, burst=1, max_sources=16)
    assert all(lim.allow("a", 0.0) for _ in range(1000))


def test_network_filter():
    assert NetworkFilter([]).allows("203.0.113.9")
    f = NetworkFilter(["10.0.0.0/8", "127.0.0.1/32"])
    assert f.allows("10.1.2.3") and f.allows("127.0.0.1")
    assert not f.allows("127.0.0.2") and not f.allows("not-an-ip")


def test_cpu_fraction_over_window():
    cpu = CpuLoad(window_s=5, cores=2)
    for t in range(11):  # one core busy: 1 cpu-second per second
        cpu.sample(float(t), cpu_s=float(t))
    assert abs(cpu.fraction - 0.5) < 1e-9
    assert len(cpu._samples) <= 7, "old samples are dropped"


def test_cpu_load_reads_its_reader_at_each_sample():
    readings = iter([10.0, 10.5, 12.0])  # CPU seconds of the whole process tree, as read
    cpu = CpuLoad(window_s=5, cores=2, read_cpu_s=lambda: next(readings))
    cpu.sample(0.0)
    cpu.sample(1.0)
    assert cpu.fraction == 0.25, "half a core of two"
    cpu.sample(2.0)
    assert cpu.fraction == 0.5, "2 s of CPU over 2 s: one core of two"


def test_cpu_load_never_goes_negative():
    readings = iter([10.0, 9.0])  # a process gone between two reads, its time with it
    cpu = CpuLoad(window_s=5, cores=1, read_cpu_s=lambda: next(readings))
    cpu.sample(0.0)
    cpu.sample(1.0)
    assert cpu.fraction == 0.0


def test_cpu_load_counts_a_busy_child_while_the_parent_idles():
    """The llama.cpp worker is a child process: a child spinning one core is load (issue #17)."""
    cpu = CpuLoad(window_s=60, cores=1)
    own = os.times()
    cpu.sample()
    t0 = time.monotonic()
    with busy_child(1.5):  # the parent idles while the child spins
        cpu.sample()
        elapsed = time.monotonic() - t0
        parent_s = sum(os.times()[:2]) - sum(own[:2])
        counted_s = cpu.fraction * elapsed  # one core: the fraction is cores busy
    assert parent_s < 0.5, "the parent itself stayed idle"
    # The child spent 1.5 s of CPU in the window (more with its start-up), however long a shared
    # machine made it wait: the load counts all of it. os.times() alone counted none of it.
    assert counted_s >= 1.4, f"the child's CPU was not counted: {counted_s:.2f} s of {elapsed:.2f} s"


def test_decision_count_then_cpu():
    cpu = CpuLoad(window_s=5, cores=1)
    adm = Admission(SipConfig(max_calls=2, admit_cpu_max_fraction=0.5), cpu)
    cpu.sample(0.0, 0.0)
    cpu.sample(1.0, 0.9)  # 90 % busy
    assert adm.decide(0).admit, "the first call is always admitted"
    assert adm.decide(1).reason == "cpu"
    assert adm.decide(2).reason == "capacity"
    adm.active_calls = 1
    assert adm.load_hint() == "calls=1/2; cpu=0.90"
    off = Admission(SipConfig(max_calls=2, admit_cpu_max_fraction=1.0), cpu)
    assert off.decide(1).admit, "1.0 turns the CPU rule off"


def test_edge_config_is_validated():
    import pytest

    from voicebox.config import ConfigError, load_config

    for bad, field in ((["10.0.0.0/33"], "allow_networks"), (["example.com"], "allow_networks")):
        with pytest.raises(ConfigError, match=field):
            load_config(overrides={"sip.allow_networks": bad})
    with pytest.raises(ConfigError, match="auth_user and auth_password"):
        load_config(overrides={"sip.auth_user": "alice"})
    with pytest.raises(ConfigError, match="session_min_expires_s"):
        load_config(overrides={"sip.session_expires_s": 100, "sip.session_min_expires_s": 200})
    with pytest.raises(ConfigError, match="admit_cpu_max_fraction"):
        load_config(overrides={"sip.admit_cpu_max_fraction": 0})
    assert load_config(overrides={"sip.allow_networks": ["10.0.0.0/8"]}).sip.allow_networks == ["10.0.0.0/8"]
