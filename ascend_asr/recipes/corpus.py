"""The recipe's English text: sentences from a small hand-written grammar, and digit strings.

Written for this project (no licence attached to any third party). The vocabulary is closed:
held-out sentences are new combinations of words the training sentences also use, which is
what a small model trained in minutes can be expected to generalise to.
"""
from __future__ import annotations

import random

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

NAMES = ["anna", "peter", "maria", "john", "susan", "david", "emma", "robert", "linda", "james", "grace",
         "thomas", "helen", "frank", "alice", "george", "nora", "henry", "clara", "oscar"]
DETERMINERS = ["the", "a", "my", "our", "his", "her", "their", "this", "that", "every"]
ADJECTIVES = ["old", "young", "small", "large", "red", "green", "blue", "yellow", "quiet", "noisy", "happy",
              "tired", "clever", "bright", "dark", "heavy", "light", "warm", "cold", "clean", "dirty", "new",
              "strange", "famous", "gentle", "brave", "hungry", "lucky", "empty", "broken", "golden", "wooden",
              "friendly", "careful", "silver", "simple", "busy", "soft", "sharp", "round"]
NOUNS = ["man", "woman", "child", "dog", "cat", "horse", "bird", "teacher", "doctor", "farmer", "sailor",
         "driver", "painter", "baker", "king", "queen", "boy", "girl", "neighbour", "friend", "book", "letter",
         "table", "chair", "window", "door", "garden", "river", "bridge", "boat", "train", "car", "apple",
         "bread", "cake", "basket", "box", "key", "lamp", "clock", "ring", "coat", "hat", "shoe", "map",
         "ticket", "picture", "song", "story", "stone", "flower", "tree", "house", "road", "ship", "wheel",
         "bottle", "cup", "plate", "pencil"]
VERBS = ["found", "carried", "painted", "watched", "opened", "closed", "cleaned", "lifted", "dropped",
         "followed", "helped", "visited", "bought", "sold", "washed", "fixed", "moved", "pushed", "pulled",
         "wanted", "liked", "saw", "took", "brought", "made", "kept", "left", "held", "gave", "read", "wrote",
         "built", "caught", "threw", "lost", "met", "heard", "showed", "called", "answered"]
PLACES = ["in the kitchen", "near the river", "at the station", "on the hill", "by the window",
          "in the garden", "under the bridge", "at the market", "behind the house", "across the road",
          "in the morning", "at school", "on the boat", "in the city", "at the farm", "near the church",
          "inside the shop", "next to the lake", "along the beach", "in the forest"]
TIMES = ["yesterday", "today", "last night", "this morning", "on monday", "on friday", "every day",
         "after dinner", "before lunch", "in the evening", "last week", "at noon", "once again", "later"]
ADVERBS = ["quickly", "slowly", "carefully", "quietly", "happily", "suddenly", "finally", "again", "often",
           "never", "always", "gently", "loudly", "early"]
NEGATIONS = ["didn't", "don't", "couldn't", "won't"]
FEELINGS = ["i'm", "you're", "she's", "they're", "we're", "it's"]


def _noun_phrase(rng: random.Random) -> str:
    words = [rng.choice(DETERMINERS)]
    if rng.random() < 0.6:
        words.append(rng.choice(ADJECTIVES))
    words.append(rng.choice(NOUNS))
    return " ".join(words)


def _subject(rng: random.Random) -> str:
    return rng.choice(NAMES) if rng.random() < 0.4 else _noun_phrase(rng)


def digit_string(rng: random.Random, low: int = 1, high: int = 6) -> str:
    return " ".join(rng.choice(DIGITS) for _ in range(rng.randint(low, high)))


def _sentence(rng: random.Random) -> str:
    form = rng.randrange(7)
    if form == 0:
        parts = [_subject(rng), rng.choice(VERBS), _noun_phrase(rng), rng.choice(PLACES)]
    elif form == 1:
        parts = [rng.choice(TIMES), _subject(rng), rng.choice(ADVERBS), rng.choice(VERBS), _noun_phrase(rng)]
    elif form == 2:
        parts = [rng.choice(NAMES), "and", rng.choice(NAMES), rng.choice(VERBS), _noun_phrase(rng), rng.choice(TIMES)]
    elif form == 3:
        parts = [_noun_phrase(rng), "was", rng.choice(ADJECTIVES), rng.choice(PLACES)]
    elif form == 4:
        parts = [rng.choice(["please call", "the number for", "send it to", "the code of"]), _subject(rng),
                 "is" if rng.random() < 0.5 else "at", digit_string(rng, 2, 4)]
    elif form == 5:
        parts = [rng.choice(["i", "we", "you", "they", "she"]), rng.choice(NEGATIONS), "see",
                 _noun_phrase(rng), rng.choice(PLACES)]
    else:
        opening = "it's clear" if rng.random() < 0.2 else f"{rng.choice(FEELINGS[:5])} {rng.choice(['sure', 'glad', 'sorry'])}"
        parts = [opening, "that", _subject(rng), rng.choice(VERBS), _noun_phrase(rng)]
    return " ".join(parts)


def sentences(count: int, seed: int, exclude: set[str] = frozenset()) -> list[str]:
    """`count` distinct sentences, none of them in `exclude`; the same for the same seed."""
    rng = random.Random(seed)
    out, seen = [], set(exclude)
    while len(out) < count:
        s = _sentence(rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def digit_strings(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [digit_string(rng) for _ in range(count)]


def vocabulary() -> set[str]:
    words = set(DIGITS + NAMES + DETERMINERS + ADJECTIVES + NOUNS + VERBS + ADVERBS + NEGATIONS + FEELINGS)
    for phrase in PLACES + TIMES:
        words.update(phrase.split())
    words.update("please call the number for send it to code of is at and was i we you they she see sure certain "
                 "glad sorry that clear".split())
    return words
