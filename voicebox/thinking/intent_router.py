"""Intent routing: a caller's (possibly misheard) sentence mapped to one of the agent's intents.

The keyword matcher in ``topics.py`` needs the right word to be heard; whisper-tiny on a phone line
often hears "wear" for "where" or "you can't keep insurance" for "do you take insurance". This
router is a small linear model over character and word n-grams, trained at start-up (well under a
second on 2 cores) from the agent's example phrasings, with ASR-style noise added to them. A
separate out-of-scope class, trained on things callers say that no intent covers, lets unknown
questions come out as ``intent=None`` instead of as the nearest intent.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC
from threadpoolctl import ThreadpoolController

if TYPE_CHECKING:
    from voicebox.agent import AgentConfig

SEED = 20240611  # one fixed seed for augmentation and the classifier: same examples, same routes

# The label of the built-in out-of-scope class. Not a valid intent name in an agent file (the
# leading underscores), and never returned: out-of-scope routes say intent=None.
OUT_OF_SCOPE = "__out_of_scope__"

# Defaults chosen by measurement: benchmarks/router_eval.py, section "Held-out calibration" of
# benchmarks/results/router.md (5-fold cross-validation, split by original sentence, over the
# built-in agent's examples plus its out-of-scope list; ~400 held-out sentences).
# - Classifier: logistic regression, C=20. Its held-out top probability is the best calibrated
#   (ECE 0.04, against 0.10 at C=5, 0.23 at C=1 and 0.12 for LinearSVC + sigmoid calibration,
#   all at about the same accuracy), so a threshold on it means what it says.
# - threshold 0.40, margin 0.10: the lowest cost (2 x wrong + 1 x unclear: a wrong answer costs a
#   turn and a correction, a re-prompt only the turn) of the grid swept. The cost surface is flat
#   from 0.35 to 0.55, because most held-out mistakes are confident ones that no threshold
#   catches; above 0.55 mostly right answers turn into re-prompts.
# - partial 0.90 (margin 0.30, which a 0.90 winner always clears; it only matters if the
#   threshold is lowered): on word prefixes of held-out sentences, 0.3% of prefixes were routed
#   to an intent that the finished sentence did not get, against 0.6% at 0.8 and 1.4% at 0.6,
#   while 7% of prefixes (mostly the last words of long sentences) still route early.
DEFAULT_C = 20.0
DEFAULT_THRESHOLD = 0.40
DEFAULT_MARGIN = 0.10
DEFAULT_PARTIAL_THRESHOLD = 0.90
DEFAULT_PARTIAL_MARGIN = 0.30
PARTIAL_MIN_WORDS = 3  # "do you", "how much" say little about where the sentence goes
# Words after which a sentence plainly goes on: a partial that ends in one is a frame whose
# content is still to come ("do you do ...", "how much is a ...", "are you in ..."). Measured:
# without this rule most confident early mistakes were such frames (e.g. "do you do" -> services
# at 0.99, when the caller went on to name something the business does not do).
DANGLING = frozenset(
    "a an the my your our his her their this that these those some any of to for in on at by with from "
    "about into and or but if so is are was were be been am do does did can could would will should "
    "may might must have has had get i you we they he she it me us them what what's where where's when "
    "which who how why there here i'm i'd i've you're it's it not no very just".split()
)

# Sounds and words that carry no request on their own. A turn made only of these is unclear,
# whatever the classifier would say about it.
FILLERS = frozenset(
    "um umm uh uhh uhm er erm ah ahh eh hm hmm mm mmm mhm huh oh ok okay yeah yep yes no so "
    "well like hello hi hey sorry please right alright".split()
)

# Things callers say that no front desk of any trade would answer or act on: the trade-neutral
# base of the out-of-scope class. Each agent adds its own (``out_of_scope`` in the agent file:
# other trades, services it does not offer), because what is out of scope for one business is
# the whole job of another ("i'm looking for a plumber"). The classifier learns what "none of
# the intents" sounds like, so an unknown question is not forced onto the nearest intent.
# English: an agent in another language gets its own list only.
OUT_OF_SCOPE_BASE: dict[str, tuple[str, ...]] = {
    "en": (
        "what's the weather going to be like tomorrow",
        "is it going to rain today",
        "what's the capital of france",
        "who won the game last night",
        "what's the score of the match",
        "can you recommend a good movie",
        "tell me a joke",
        "sing me a song",
        "what's your favorite color",
        "what's the meaning of life",
        "i'm calling about your car's extended warranty",
        "what's the stock price of apple",
        "how do you make pancakes",
        "who is the president",
        "translate hello into spanish",
        "i think i have the wrong number",
        "blah blah blah",
        "testing testing one two three",
        "can you hear me now",
        "hello is anyone there",
        "i was just wondering about stuff",
        "nothing never mind",
        "um",
        "uh huh",
        "hmm let me think",
        "mm hmm",
        "uh",
        "er well you know",
        "okay",
        "yeah",
    ),
}

# Mishearings of the kind whisper-tiny makes on a narrow-band line, as (said, heard) pairs:
# homophones and near-homophones of the words any front desk's calls hinge on (where, when,
# how much, booking, paying, a person, goodbye). Applied word-wise to the training examples so
# the n-grams of the misheard form are seen in training too. The words of one business (its
# services, its insurers) are in its agent file, [recognizer] confusions, and are added to these.
# One is observed, not guessed: "do you take" came out as "you can't keep" from a recording
# through the G.711 channel (benchmarks/results/router.md).
CONFUSIONS_BASE: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        ("do you take", "you can't keep"),
        ("do you take", "do you tick"),
        ("take", "keep"),
        ("take", "tape"),
        ("where", "wear"),
        ("where", "were"),
        ("where are", "wherever"),
        ("time", "thyme"),
        ("what time", "what's time"),
        ("hours", "ours"),
        ("hours", "hour's"),
        ("open", "often"),
        ("open", "opened"),
        ("saturday", "sat today"),
        ("saturday", "saturdays"),
        ("sunday", "someday"),
        ("weekdays", "weak days"),
        ("friday", "fried day"),
        ("located", "locate it"),
        ("address", "a dress"),
        ("parking", "barking"),
        ("price", "prize"),
        ("cost", "coast"),
        ("how much", "how mush"),
        ("appointment", "a point meant"),
        ("appointment", "appointments"),
        ("book", "look"),
        ("book", "brook"),
        ("cancel", "council"),
        ("cancel", "counsel"),
        ("bill", "bell"),
        ("pay", "pray"),
        ("card", "cart"),
        ("person", "parson"),
        ("human", "humane"),
        ("real", "reel"),
        ("speak", "speech"),
        ("receptionist", "reception is"),
        ("bye", "by"),
        ("bye", "buy"),
        ("goodbye", "good buy"),
        ("thanks", "thinks"),
        ("thank you", "thank u"),
        ("services", "service is"),
        ("services", "surfaces"),
        ("offer", "off her"),
        ("you", "ya"),
        ("your", "you're"),
        ("i'd", "i"),
        ("what's", "what is"),
        ("what's", "was"),
        ("can i", "canai"),
    ),
}
OUT_OF_SCOPE_EXAMPLES = OUT_OF_SCOPE_BASE["en"]  # the base alone: for callers without an agent file
ASR_CONFUSIONS = CONFUSIONS_BASE["en"]

_NON_WORD = re.compile(r"[^a-z0-9' ]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Route:
    """Where a caller's sentence goes. ``intent`` is None when unclear or out of scope."""

    intent: str | None
    confidence: float  # probability of the winning class (the out-of-scope class included)
    runner_up: str | None  # the second most likely intent; None when that is "out of scope"
    unclear: bool  # too unsure to act on: re-prompt rather than answer


def normalize(text: str) -> str:
    """Lowercase, punctuation to spaces (apostrophes kept), spaces collapsed.

    Done to training examples and to every routed sentence alike, so case and punctuation (which
    whisper adds or leaves out at whim) never reach the features.
    """
    text = text.lower().replace("’", "'").replace("-", " ")
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


def is_filler(text: str) -> bool:
    """True for empty text or text made only of hesitation sounds and courtesy words."""
    return all(w.strip("'") in FILLERS for w in normalize(text).split())


def too_early(partial: str) -> bool:
    """True when a partial transcript cannot be routed yet, however confident the classifier.

    Too short, or it stops on a word that needs a continuation (see DANGLING).
    """
    words = normalize(partial).split()
    return len(words) < PARTIAL_MIN_WORDS or words[-1] in DANGLING


def _confused(
    text: str, rng: random.Random, confusions: Sequence[tuple[str, str]] = ASR_CONFUSIONS
) -> str | None:
    """One ASR confusion applied to ``text`` (a whole-word match), or None if none applies."""
    padded = f" {text} "
    options = [(a, b) for a, b in confusions if f" {normalize(a)} " in padded]
    if not options:
        return None
    a, b = options[rng.randrange(len(options))]
    return normalize(padded.replace(f" {normalize(a)} ", f" {b} ", 1))


def _char_noise(text: str, rng: random.Random, swap: bool) -> str | None:
    """One dropped character, or two neighbours swapped, inside one word of 4+ letters."""
    words = text.split()
    long_words = [i for i, w in enumerate(words) if len(w) >= 4]
    if not long_words:
        return None
    i = long_words[rng.randrange(len(long_words))]
    w = words[i]
    j = rng.randrange(1, len(w) - 1)  # keep the first letter: ASR rarely loses a word onset
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if swap else w[:j] + w[j + 1 :]
    return " ".join(words)


def augment(
    example: str, rng: random.Random, confusions: Sequence[tuple[str, str]] = ASR_CONFUSIONS
) -> list[str]:
    """The example plus ASR-style noisy copies of it, normalized and without duplicates.

    Noise: apostrophes lost ("whats"), a hesitation in front, one or two whisper confusions, a
    dropped character and a swapped pair. Case and punctuation are covered by ``normalize``.
    """
    base = normalize(example)
    variants = [base, base.replace("'", ""), f"{rng.choice(('um', 'uh', 'yeah', 'hi', 'so'))} {base}"]
    once = _confused(base, rng, confusions)
    if once:
        variants.append(once)
        twice = _confused(once, rng, confusions)
        if twice:
            variants.append(twice)
    variants += [_char_noise(base, rng, swap=False), _char_noise(base, rng, swap=True)]
    return list(dict.fromkeys(v for v in variants if v))


def training_set(
    intents: Sequence[tuple[str, Sequence[str]]],
    out_of_scope: Sequence[str] = OUT_OF_SCOPE_EXAMPLES,
    seed: int = SEED,
    augmented: bool = True,
    confusions: Sequence[tuple[str, str]] = ASR_CONFUSIONS,
) -> tuple[list[str], list[str]]:
    """(texts, labels) for the given intents plus the out-of-scope class, augmented unless told."""
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    for name, examples in [*intents, (OUT_OF_SCOPE, out_of_scope)]:
        for example in examples:
            for variant in augment(example, rng, confusions) if augmented else [normalize(example)]:
                if variant:
                    texts.append(variant)
                    labels.append(name)
    return texts, labels


def make_features() -> FeatureUnion:
    """Character n-grams survive misspellings and split words; word n-grams keep word order."""
    return FeatureUnion(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)),
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                      token_pattern=r"[a-z0-9']+")),
        ]
    )


def make_classifier(kind: str = "logreg", C: float | None = None) -> LogisticRegression | CalibratedClassifierCV:
    """``logreg`` (the default, see DEFAULT_C) or ``svc`` (LinearSVC, sigmoid-calibrated).

    Both are kept so the benchmark can compare their calibration on held-out examples.
    """
    if kind == "logreg":
        # newton-cg: the same optimum as lbfgs here, in a third of the time (7 vs 31 iterations).
        return LogisticRegression(C=C or DEFAULT_C, solver="newton-cg", max_iter=300, random_state=SEED)
    if kind == "svc":
        svc = LinearSVC(C=C or 1.0, random_state=SEED)
        return CalibratedClassifierCV(svc, method="sigmoid", cv=3)
    raise ValueError(f"unknown classifier {kind!r} (logreg or svc)")


class IntentRouter:
    """Routes caller sentences to intent names; trained once, in the constructor."""

    def __init__(
        self,
        intents: Sequence[tuple[str, Sequence[str]]],
        threshold: float = DEFAULT_THRESHOLD,
        margin: float = DEFAULT_MARGIN,
        *,
        partial_threshold: float = DEFAULT_PARTIAL_THRESHOLD,
        partial_margin: float = DEFAULT_PARTIAL_MARGIN,
        classifier: str = "logreg",
        C: float | None = None,
        out_of_scope: Sequence[str] = OUT_OF_SCOPE_EXAMPLES,
        augmented: bool = True,
        confusions: Sequence[tuple[str, str]] = ASR_CONFUSIONS,
    ) -> None:
        """``out_of_scope`` and ``confusions`` default to the trade-neutral English bases; use
        ``for_agent`` to add an agent file's own."""
        _check_intents(intents)
        self.threshold = threshold
        self.margin = margin
        # A partial is never judged more leniently than a final turn.
        self.partial_threshold = max(partial_threshold, threshold)
        self.partial_margin = max(partial_margin, margin)
        texts, labels = training_set(intents, out_of_scope, augmented=augmented, confusions=confusions)
        self.pipeline = Pipeline([("features", make_features()), ("clf", make_classifier(classifier, C))])
        with _one_thread():
            self.pipeline.fit(texts, labels)
        self.labels: list[str] = [str(c) for c in self.pipeline.classes_]

    @classmethod
    def for_agent(cls, agent: AgentConfig, **options: Any) -> "IntentRouter":
        """The router of an agent file: its intents' examples, the neutral out-of-scope base and
        confusions for its language, plus its own ``out_of_scope`` and ``[recognizer] confusions``."""
        return cls(
            [(i.name, i.examples) for i in agent.intents],
            out_of_scope=agent_out_of_scope(agent),
            confusions=agent_confusions(agent),
            **options,
        )

    def probabilities(self, text: str) -> dict[str, float]:
        """Every class's probability for ``text`` (the out-of-scope class included)."""
        return dict(zip(self.labels, (float(p) for p in self.predict(text)), strict=True))

    def route(self, text: str) -> Route:
        """The intent of a finished turn."""
        return self._route(text, self.threshold, self.margin)

    def route_partial(self, text: str) -> Route:
        """The intent of a turn still in progress: only when nearly certain, since it may change."""
        if too_early(text):
            return Route(None, 0.0, None, True)
        return self._route(text, self.partial_threshold, self.partial_margin)

    def predict(self, text: str) -> np.ndarray:
        """Class probabilities for ``text``, in the order of ``self.labels``."""
        with _one_thread():
            return self.pipeline.predict_proba([normalize(text)])[0]

    def _route(self, text: str, threshold: float, margin: float) -> Route:
        if is_filler(text):
            return Route(None, 0.0, None, True)
        probs = self.predict(text)
        order = np.argsort(-probs, kind="stable")  # stable: ties broken the same way every run
        best, second = self.labels[order[0]], self.labels[order[1]]
        confidence = float(probs[order[0]])
        unclear = confidence < threshold or confidence - float(probs[order[1]]) < margin
        intent = None if unclear or best == OUT_OF_SCOPE else best
        return Route(intent, confidence, None if second == OUT_OF_SCOPE else second, unclear)


def agent_out_of_scope(agent: AgentConfig) -> list[str]:
    """The out-of-scope examples an agent's router learns: the neutral base, then the file's own."""
    return [*OUT_OF_SCOPE_BASE.get(agent.language, ()), *agent.out_of_scope]


def agent_confusions(agent: AgentConfig) -> list[tuple[str, str]]:
    """The ASR confusions an agent's router is trained with: the neutral base, then the file's own."""
    return [*CONFUSIONS_BASE.get(agent.language, ()), *(tuple(p) for p in agent.recognizer.confusions)]


def _one_thread() -> AbstractContextManager:
    """BLAS/OpenMP limited to one thread while fitting or predicting.

    Measured on 2 cores: an lbfgs fit took 6 s with numpy's and scipy's OpenBLAS pools (2 threads
    each) spinning against each other on these tiny matrices, 0.45 s on one thread (newton-cg,
    used now, suffers less: 0.41 s against 0.35 s). It also keeps the router from competing
    with whisper and the language model for cores during a call.
    """
    return _controller().limit(limits=1)


@cache
def _controller() -> ThreadpoolController:
    # Made once: scanning the loaded libraries costs ~2 ms, more than routing a sentence.
    return ThreadpoolController()


def _check_intents(intents: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Fail at start-up, with the reason, on an agent file the router cannot learn from."""
    names = [name for name, _ in intents]
    if not names:
        raise ValueError("intent router: no intents given")
    if len(set(names)) != len(names):
        raise ValueError(f"intent router: duplicate intent names in {names}")
    if OUT_OF_SCOPE in names:
        raise ValueError(f"intent router: {OUT_OF_SCOPE!r} is reserved")
    empty = [name for name, examples in intents if not any(normalize(e) for e in examples)]
    if empty:
        raise ValueError(f"intent router: intents without examples: {empty}")
