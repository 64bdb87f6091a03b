"""Word lists for the phonevec sentence generator (written for this project; plain English words).

The lists are chosen for phonetic coverage of General American English: every vowel, diphthong and consonant
of espeak-ng's `en-us` phoneme set appears in several words (e.g. /Z/ measure, vision; /OI/ boy, coin; /U/ book,
wood; /tS/ chair; /dZ/ judge). Changing a list changes every generated sentence after the first use of that list,
so treat them as frozen once a corpus has been built (the corpus records a hash of the sentences it used).
"""
from __future__ import annotations

NAMES = (
    "Anna", "Ben", "Clara", "David", "Emma", "Frank", "Grace", "Henry", "Isabel", "Jack", "Karen", "Leo",
    "Maria", "Nathan", "Olivia", "Peter", "Quinn", "Rosa", "Samuel", "Tessa", "Victor", "Wendy", "Yusuf",
    "Zoe", "Joyce", "Roy", "George", "Judith", "Charlotte", "Arthur", "Eileen", "Howard", "Ruth", "Oscar",
)

PLACES = (
    "the garden", "the kitchen", "the station", "the harbor", "the village", "the forest", "the museum",
    "the market", "the library", "the valley", "the theater", "the bakery", "the river bank", "the mountain",
    "the school yard", "the old church", "the beach", "the garage", "the bridge", "the island", "the office",
    "the city square", "the hospital", "the farm", "the airport", "the hotel lobby", "the tunnel", "the choir room",
)

ADJECTIVES = (
    "red", "blue", "green", "yellow", "purple", "orange", "golden", "silver", "bright", "dark", "quiet",
    "noisy", "gentle", "rough", "smooth", "tiny", "huge", "ancient", "modern", "lovely", "strange", "famous",
    "hungry", "thirsty", "sleepy", "busy", "lazy", "clever", "foolish", "careful", "cheerful", "nervous",
    "heavy", "light", "warm", "cold", "frozen", "wooden", "broken", "hidden", "curious", "pleasant", "usual",
    "casual", "royal", "loyal", "joyful", "thoughtful", "wise", "young", "old", "tall", "short", "narrow",
    "wide", "deep", "shallow", "fresh", "sweet", "bitter", "sour", "salty", "empty", "crowded", "beautiful",
    "pure", "poor", "rich", "brave", "shy", "proud", "humble", "lonely", "vivid", "foggy", "thick", "thin",
)

NOUNS = (
    "cat", "dog", "horse", "bird", "fish", "mouse", "goose", "sheep", "lion", "tiger", "monkey", "rabbit",
    "apple", "orange", "banana", "cherry", "bread", "cheese", "butter", "honey", "sugar", "pepper", "soup",
    "book", "letter", "paper", "pencil", "window", "door", "table", "chair", "bottle", "basket", "bucket",
    "garden", "flower", "tree", "leaf", "stone", "river", "ocean", "mountain", "cloud", "rain", "snow",
    "storm", "thunder", "sun", "moon", "star", "planet", "engine", "wheel", "boat", "ship", "train", "truck",
    "bicycle", "guitar", "piano", "violin", "drum", "trumpet", "song", "voice", "measure", "treasure",
    "vision", "television", "garage", "beige coat", "boy", "toy", "coin", "noise", "oyster", "judge",
    "jacket", "jewel", "giant", "choir", "church", "cheek", "chin", "thumb", "throat", "tooth", "feather",
    "father", "mother", "brother", "sister", "teacher", "doctor", "farmer", "sailor", "soldier", "baker",
    "wolf", "wood", "hook", "foot", "sugar bowl", "cushion", "pillow", "blanket", "candle", "lamp", "clock",
    "key", "lock", "ring", "thing", "king", "queen", "castle", "tower", "map", "message", "picture", "puzzle",
    "zebra", "zipper", "vase", "van", "valley", "whistle", "wagon", "yogurt", "yacht", "hour", "fire", "tire",
    "year", "ear", "hair", "pear", "bear", "cure", "tour", "shore", "course", "word", "world", "girl", "turtle",
)

VERBS_PAST = (
    "found", "lost", "saw", "heard", "painted", "carried", "dropped", "lifted", "washed", "cleaned", "bought",
    "sold", "borrowed", "returned", "opened", "closed", "followed", "watched", "touched", "pushed", "pulled",
    "measured", "treasured", "wrapped", "hid", "shared", "thought about", "dreamed of", "sang about", "chose",
    "judged", "joined", "enjoyed", "destroyed", "avoided", "pointed at", "wished for", "caught", "threw",
    "fixed", "mixed", "cooked", "baked", "built", "drew", "brought", "taught", "showed", "named", "missed",
)

VERBS_BASE = (
    "find", "keep", "see", "hear", "paint", "carry", "lift", "wash", "clean", "buy", "sell", "borrow",
    "return", "open", "close", "follow", "watch", "push", "pull", "measure", "share", "choose", "join",
    "enjoy", "avoid", "catch", "throw", "fix", "mix", "cook", "bake", "build", "draw", "bring", "teach",
    "show", "remember", "forget", "imagine", "visit", "sing", "hum", "whisper", "shout", "believe",
)

INTRANSITIVE = (
    "laughed", "smiled", "waited", "slept", "danced", "sang", "jumped", "rested", "listened", "shivered",
    "whistled", "wandered", "hurried", "paused", "sighed", "cheered", "yawned", "frowned", "hummed", "froze",
)

ADVERBS = (
    "slowly", "quickly", "quietly", "loudly", "gently", "carefully", "happily", "sadly", "suddenly", "easily",
    "usually", "rarely", "always", "never", "often", "almost", "really", "truly", "together", "alone",
)

TIMES = (
    "this morning", "last night", "yesterday", "on Monday", "on Tuesday", "on Wednesday", "on Thursday",
    "on Friday", "on Saturday", "on Sunday", "in the evening", "at noon", "at midnight", "in June",
    "in July", "in August", "in September", "every winter", "every summer", "after lunch", "before dawn",
)

NUMBERS = (
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "twenty",
    "thirty", "forty", "fifty", "a hundred", "a thousand", "a dozen",
)

PREPOSITIONS = ("near", "under", "behind", "beside", "inside", "above", "across", "toward", "through", "around")

SINGING_LINES = (
    "oh my love", "la la la", "sing it again", "hold me tonight", "under the silver moon", "fly away home",
    "you are my morning light", "the night is young", "dance with me", "all through the night", "hear my voice",
    "row the boat ashore", "over the green hill", "shine on", "my heart will go", "sweet dreams tonight",
)
