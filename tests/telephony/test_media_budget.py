from voicebox.config import SipConfig
from voicebox.telephony.admission import Admission
from voicebox.telephony.media_budget import HOLD_S, IOQUEUE_SLOTS, PAIRS, PENDING_S, MediaBudget


def test_budget_fits_the_ioqueue_and_every_allowed_max_calls():
    assert 2 * PAIRS < IOQUEUE_SLOTS, "two sockets a call, and spare slots left over"
    most_calls = next(m.le for m in SipConfig.model_fields["max_calls"].metadata if hasattr(m, "le"))
    assert PAIRS > most_calls, "a full house still leaves room to churn"


def test_reservations_stop_at_the_budget():
    b = MediaBudget(pairs=3)
    assert [b.try_reserve(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.refused == 1


def test_unclaimed_reservation_lasts_until_its_sockets_are_surely_free():
    b = MediaBudget(pairs=1)
    assert b.try_reserve(0.0)  # pjsua refuses this INVITE by itself (488): never claimed
    assert not b.try_reserve(PENDING_S - 0.01)
    assert b.try_reserve(PENDING_S)


def test_claimed_call_counts_while_live_then_cools_down():
    live = [0]
    b = MediaBudget(pairs=1, live=lambda: live[0])
    assert b.try_reserve(0.0)
    b.claim()
    live[0] = 1  # the server's slot now holds the pair
    assert b.in_use(0.0) == 1 and not b.try_reserve(10.0), "a live call holds its pair however long"
    live[0] = 0
    b.release(10.0)
    assert not b.try_reserve(10.0 + HOLD_S - 0.01), "pjlib keeps a closed socket's slot for a while"
    assert b.try_reserve(10.0 + HOLD_S)


def test_claim_never_lets_the_count_drop_below_what_pjsua_holds():
    live = [0]
    b = MediaBudget(pairs=2, live=lambda: live[0])
    assert b.try_reserve(0.0)  # A: refused by pjsua itself, its sockets close within this poll
    assert b.try_reserve(0.1)  # B: becomes a call
    b.claim()
    live[0] = 1
    # A's sockets are free (500 ms after closing) before the reservation left in its place expires.
    assert b.in_use(0.1 + PENDING_S - 0.01) == 2
    assert b.in_use(0.1 + PENDING_S) == 1


def test_claim_without_reservation_is_harmless():
    b = MediaBudget(pairs=1)
    b.claim()  # a guard that could not calibrate lets INVITEs through unreserved
    assert b.try_reserve(0.0)


def test_admission_has_invite_bucket_and_media_budget():
    adm = Admission(SipConfig(source_invites_per_s=1, source_burst_invites=2))
    assert [adm.invites.allow("198.51.100.7", 0.0) for _ in range(3)] == [True, True, False]
    assert adm.media.pairs == PAIRS
