from voicebox.listening.local_agreement import LocalAgreement


def feed(*hyps):
    la = LocalAgreement()
    out = None
    for h in hyps:
        out = la.update(h)
    return la, out


def test_first_hypothesis_commits_nothing():
    _, p = feed("I'd like to")
    assert p.committed == ()
    assert p.tentative == ("I'd", "like", "to")


def test_prefix_of_two_consecutive_hypotheses_is_committed():
    _, p = feed("I'd like to", "I'd like to book a")
    assert p.committed == ("I'd", "like", "to")
    assert p.tentative == ("book", "a")
    assert p.text == "I'd like to book a"


def test_a_word_changed_by_the_next_hypothesis_stays_tentative():
    _, p = feed("I'd like to look", "I'd like to book a", "I'd like to book a cleaning")
    assert p.committed == ("I'd", "like", "to", "book", "a")
    assert p.tentative == ("cleaning",)


def test_punctuation_and_case_do_not_break_agreement():
    _, p = feed("What time do you open on Saturday", "what time do you open on Saturday?")
    assert [w.lower().strip("?") for w in p.committed] == "what time do you open on saturday".split()
    assert p.tentative == ()


def test_committed_words_never_change_even_if_whisper_respells_them():
    la, _ = feed("Can I come on Monday", "Can I come on Monday no")
    p = la.update("Can I come in on Monday, no wait, Wednesday")
    assert p.committed[:3] == ("Can", "I", "come")
    assert la.committed[:3] == ("Can", "I", "come")
    # The new words after the last committed one are offered as tentative.
    assert "Wednesday" in p.tentative


def test_commitment_only_grows():
    la = LocalAgreement()
    sizes = []
    for h in ["My", "My name", "My name is", "My name is Dana", "Hmm name is Dana Smith", "My name is Dana Smith."]:
        sizes.append(len(la.update(h).committed))
    assert sizes == sorted(sizes)
    assert la.committed[:3] == ("My", "name", "is")


def test_reset_forgets_the_turn():
    la, _ = feed("hello there", "hello there")
    la.reset()
    assert la.update("goodbye").committed == ()
