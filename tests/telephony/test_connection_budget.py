"""Which incoming TCP/TLS connections the edge keeps (no library running)."""

from voicebox.telephony.connection_budget import ConnectionBudget


def test_a_source_past_its_share_gets_its_new_connection_closed():
    b = ConnectionBudget(per_source=2, total=10)
    assert b.opened(1, "10.0.0.9") == [] and b.opened(2, "10.0.0.9") == []
    assert b.opened(3, "10.0.0.9") == [3]
    assert b.live("10.0.0.9") == 2
    assert b.opened(4, "10.0.0.8") == [], "another source is not affected"


def test_when_full_the_oldest_silent_connection_makes_room():
    b = ConnectionBudget(per_source=5, total=3)
    b.opened(1, "a")
    b.opened(2, "b")
    b.opened(3, "c")
    b.spoke(1)  # a peer that sent a request: kept
    assert b.opened(4, "d") == [2]
    assert b.live() == 3 and b.live("b") == 0


def test_when_full_of_peers_the_new_connection_is_closed():
    b = ConnectionBudget(per_source=5, total=2)
    for key, src in ((1, "a"), (2, "b")):
        b.opened(key, src)
        b.spoke(key)
    assert b.opened(3, "c") == [3]
    assert b.live() == 2


def test_closing_frees_the_share_and_is_idempotent():
    b = ConnectionBudget(per_source=1, total=4)
    b.opened(1, "a")
    b.closed(1)
    b.closed(1)
    assert b.live("a") == 0 and b.opened(2, "a") == []
    b.opened(2, "a")  # the same key reported again (a reused address): counted once
    assert b.live("a") == 1
