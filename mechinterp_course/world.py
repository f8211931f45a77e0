"""The synthetic world the course model is trained on, and the ground truth the chapters check against.

Every fact the course model could learn comes from here, so a chapter can assert *what* a model
knows (which capital, which continent, which name is the indirect object) instead of trusting a
plot. Facts are real on purpose: "The capital of Texas is" means the same thing to the course model,
to SmolLM2 and to GPT-2.

Text comes in families (country facts, state facts, name stories, repeated words, Python, ...).
Each generated `Document` keeps its family and attributes, which later chapters use as labels.
Everything is a pure function of a `numpy.random.Generator`, so a seed fixes the whole stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# --- Facts ------------------------------------------------------------------------------------

# country: (capital, continent, main language)
COUNTRIES: dict[str, tuple[str, str, str]] = {
    "France": ("Paris", "Europe", "French"),
    "Germany": ("Berlin", "Europe", "German"),
    "Spain": ("Madrid", "Europe", "Spanish"),
    "Italy": ("Rome", "Europe", "Italian"),
    "Portugal": ("Lisbon", "Europe", "Portuguese"),
    "Greece": ("Athens", "Europe", "Greek"),
    "Poland": ("Warsaw", "Europe", "Polish"),
    "Sweden": ("Stockholm", "Europe", "Swedish"),
    "Norway": ("Oslo", "Europe", "Norwegian"),
    "Finland": ("Helsinki", "Europe", "Finnish"),
    "Denmark": ("Copenhagen", "Europe", "Danish"),
    "Austria": ("Vienna", "Europe", "German"),
    "Ireland": ("Dublin", "Europe", "English"),
    "Hungary": ("Budapest", "Europe", "Hungarian"),
    "Russia": ("Moscow", "Europe", "Russian"),
    "Ukraine": ("Kyiv", "Europe", "Ukrainian"),
    "Iceland": ("Reykjavik", "Europe", "Icelandic"),
    "Romania": ("Bucharest", "Europe", "Romanian"),
    "Bulgaria": ("Sofia", "Europe", "Bulgarian"),
    "Serbia": ("Belgrade", "Europe", "Serbian"),
    "Croatia": ("Zagreb", "Europe", "Croatian"),
    "Egypt": ("Cairo", "Africa", "Arabic"),
    "Kenya": ("Nairobi", "Africa", "Swahili"),
    "Nigeria": ("Abuja", "Africa", "English"),
    "Ghana": ("Accra", "Africa", "English"),
    "Morocco": ("Rabat", "Africa", "Arabic"),
    "Ethiopia": ("Addis Ababa", "Africa", "Amharic"),
    "Senegal": ("Dakar", "Africa", "French"),
    "Tanzania": ("Dodoma", "Africa", "Swahili"),
    "Uganda": ("Kampala", "Africa", "English"),
    "Angola": ("Luanda", "Africa", "Portuguese"),
    "Algeria": ("Algiers", "Africa", "Arabic"),
    "Tunisia": ("Tunis", "Africa", "Arabic"),
    "Sudan": ("Khartoum", "Africa", "Arabic"),
    "Zambia": ("Lusaka", "Africa", "English"),
    "Zimbabwe": ("Harare", "Africa", "English"),
    "Japan": ("Tokyo", "Asia", "Japanese"),
    "China": ("Beijing", "Asia", "Chinese"),
    "India": ("New Delhi", "Asia", "Hindi"),
    "Thailand": ("Bangkok", "Asia", "Thai"),
    "Vietnam": ("Hanoi", "Asia", "Vietnamese"),
    "Indonesia": ("Jakarta", "Asia", "Indonesian"),
    "Iran": ("Tehran", "Asia", "Persian"),
    "Pakistan": ("Islamabad", "Asia", "Urdu"),
    "South Korea": ("Seoul", "Asia", "Korean"),
    "Turkey": ("Ankara", "Asia", "Turkish"),
    "Saudi Arabia": ("Riyadh", "Asia", "Arabic"),
    "Iraq": ("Baghdad", "Asia", "Arabic"),
    "Mongolia": ("Ulaanbaatar", "Asia", "Mongolian"),
    "Nepal": ("Kathmandu", "Asia", "Nepali"),
    "Malaysia": ("Kuala Lumpur", "Asia", "Malay"),
    "Cambodia": ("Phnom Penh", "Asia", "Khmer"),
    "Bangladesh": ("Dhaka", "Asia", "Bengali"),
    "Brazil": ("Brasilia", "South America", "Portuguese"),
    "Argentina": ("Buenos Aires", "South America", "Spanish"),
    "Chile": ("Santiago", "South America", "Spanish"),
    "Peru": ("Lima", "South America", "Spanish"),
    "Colombia": ("Bogota", "South America", "Spanish"),
    "Venezuela": ("Caracas", "South America", "Spanish"),
    "Ecuador": ("Quito", "South America", "Spanish"),
    "Uruguay": ("Montevideo", "South America", "Spanish"),
    "Paraguay": ("Asuncion", "South America", "Spanish"),
    "Canada": ("Ottawa", "North America", "English"),
    "Mexico": ("Mexico City", "North America", "Spanish"),
    "Cuba": ("Havana", "North America", "Spanish"),
    "Jamaica": ("Kingston", "North America", "English"),
    "Panama": ("Panama City", "North America", "Spanish"),
    "Australia": ("Canberra", "Oceania", "English"),
    "New Zealand": ("Wellington", "Oceania", "English"),
    "Fiji": ("Suva", "Oceania", "English"),
}

US_STATES: dict[str, str] = {
    "Alabama": "Montgomery", "Alaska": "Juneau", "Arizona": "Phoenix", "Arkansas": "Little Rock",
    "California": "Sacramento", "Colorado": "Denver", "Connecticut": "Hartford", "Delaware": "Dover",
    "Florida": "Tallahassee", "Georgia": "Atlanta", "Hawaii": "Honolulu", "Idaho": "Boise",
    "Illinois": "Springfield", "Indiana": "Indianapolis", "Iowa": "Des Moines", "Kansas": "Topeka",
    "Kentucky": "Frankfort", "Louisiana": "Baton Rouge", "Maine": "Augusta", "Maryland": "Annapolis",
    "Massachusetts": "Boston", "Michigan": "Lansing", "Minnesota": "Saint Paul",
    "Mississippi": "Jackson", "Missouri": "Jefferson City", "Montana": "Helena", "Nebraska": "Lincoln",
    "Nevada": "Carson City", "New Hampshire": "Concord", "New Jersey": "Trenton",
    "New Mexico": "Santa Fe", "New York": "Albany", "North Carolina": "Raleigh",
    "North Dakota": "Bismarck", "Ohio": "Columbus", "Oklahoma": "Oklahoma City", "Oregon": "Salem",
    "Pennsylvania": "Harrisburg", "Rhode Island": "Providence", "South Carolina": "Columbia",
    "South Dakota": "Pierre", "Tennessee": "Nashville", "Texas": "Austin", "Utah": "Salt Lake City",
    "Vermont": "Montpelier", "Virginia": "Richmond", "Washington": "Olympia",
    "West Virginia": "Charleston", "Wisconsin": "Madison", "Wyoming": "Cheyenne",
}

NAMES = [
    "Mary", "John", "Alice", "Bob", "Sarah", "James", "Emma", "David", "Anna", "Tom", "Lucy", "Mark",
    "Kate", "Paul", "Laura", "Peter", "Julia", "Chris", "Rachel", "Daniel", "Grace", "Michael",
    "Sophie", "Adam", "Claire", "Eric", "Helen", "Ryan", "Nina", "Sam", "Olivia", "Jack", "Emily",
    "Ben", "Rose", "Luke", "Amy", "Max", "Lily", "Oscar",
]
PLACES = ["store", "park", "school", "beach", "market", "office", "garden", "library", "station",
          "restaurant", "hospital", "museum"]
OBJECTS = ["drink", "book", "ball", "letter", "gift", "key", "bag", "pen", "cake", "ticket",
           "flower", "coin"]

# Indirect-object stories. {X} and {Y} introduce both names (in either order); {S} (the subject) is
# named again and gives something to {IO} (the indirect object), the name a model should predict.
IOI_TEMPLATES = [
    "When {X} and {Y} went to the {place}, {S} gave a {obj} to {IO}",
    "Then, {X} and {Y} had a long day at the {place}. {S} gave a {obj} to {IO}",
    "While {X} and {Y} were at the {place}, {S} handed the {obj} to {IO}",
    "After {X} and {Y} arrived at the {place}, {S} passed a {obj} to {IO}",
    "{X} and {Y} were sitting in the {place}. {S} offered a {obj} to {IO}",
]

WATER_WORDS = ["river", "sea", "ocean", "lake", "rain", "water", "wave", "stream", "flood", "ice",
               "snow", "boat", "fish", "pond", "tide", "storm"]
WATER_ADJECTIVES = ["cold", "deep", "calm", "wide", "clear", "dark", "warm", "still", "fast"]
CLAIMS = ["the results were clear", "the plan worked well", "the method is simple",
          "the idea was sound", "more work is needed", "the test was a success",
          "the model learned the facts", "the story has a happy ending"]
CONCLUDERS = ["In conclusion,", "To sum up,", "Overall,", "In summary,", "Finally,"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
PY_FUNCS = ["add", "compute", "get_value", "update", "load_data", "process", "scale", "merge",
            "check", "count_items"]
PY_VARS = ["x", "y", "data", "items", "count", "value", "result", "name", "total", "size"]
PY_OPS = ["+", "-", "*"]
PY_CLASSES = ["Point", "Model", "Counter", "Buffer", "Record"]

# A fixed second-order rule over 16 symbols: the symbol after (a, b) is RULE_TABLE[a][b]. Predicting
# it needs the exact previous token, so a model trained on it grows a sharp previous-token head.
RULE_SYMBOLS = list("0123456789abcdef")
RULE_TABLE = np.random.default_rng(1234).integers(0, 16, size=(16, 16))

FAMILIES = ["country", "state", "ioi", "story", "repeat", "python", "water", "conclusion",
            "sequence", "rule"]

# How often each family is drawn when the training stream is made. Induction and name-moving need
# much shaped data (repeats and name stories); facts need repetition too.
FAMILY_WEIGHTS = {
    "country": 0.20, "state": 0.16, "ioi": 0.22, "story": 0.05, "repeat": 0.15, "python": 0.07,
    "water": 0.05, "conclusion": 0.05, "sequence": 0.05, "rule": 0.10,
}


@dataclass
class Document:
    """One piece of training text with the labels a chapter may want (family, country, ...)."""

    family: str
    text: str
    attrs: dict = field(default_factory=dict)


@dataclass
class Prompt:
    """A prompt with a known right answer (a single next word, with its leading space)."""

    text: str
    answer: str
    attrs: dict = field(default_factory=dict)


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


# --- Families -----------------------------------------------------------------------------------

def country_document(rng: np.random.Generator, country: str | None = None) -> Document:
    country = country or _pick(rng, list(COUNTRIES))
    capital, continent, language = COUNTRIES[country]
    templates = [
        "The capital of {c} is {cap}.",
        "The capital of {c} is {cap}.",
        "{cap} is the capital of {c}.",
        "{c} is a country in {cont}.",
        "People in {c} speak {lang}.",
        "The main language of {c} is {lang}.",
        "The capital city of {c} is {cap}.",
        "{c} is in {cont}, and its capital is {cap}.",
        "Q: What is the capital of {c}? A: {cap}.",
    ]
    order = rng.permutation(len(templates))[: int(rng.integers(2, 5))]
    text = " ".join(templates[i].format(c=country, cap=capital, cont=continent, lang=language)
                    for i in order)
    return Document("country", text, {"country": country, "capital": capital,
                                      "continent": continent, "language": language})


def state_document(rng: np.random.Generator, state: str | None = None) -> Document:
    state = state or _pick(rng, list(US_STATES))
    capital = US_STATES[state]
    templates = [
        "The capital of {s} is {cap}.",
        "The capital of {s} is {cap}.",
        "{cap} is the capital of {s}.",
        "{s} is a state in the United States.",
        "The state capital of {s} is {cap}.",
        "{cap}, the capital of {s}, is a city in the United States.",
        "Q: What is the capital of {s}? A: {cap}.",
    ]
    order = rng.permutation(len(templates))[: int(rng.integers(2, 4))]
    text = " ".join(templates[i].format(s=state, cap=capital) for i in order)
    return Document("state", text, {"state": state, "capital": capital})


def ioi_story(rng: np.random.Generator, template: int | None = None) -> Prompt:
    """An indirect-object prompt ending in ' to', its answer the indirect object's name."""
    io, s = (str(n) for n in rng.choice(NAMES, size=2, replace=False))
    template = int(rng.integers(len(IOI_TEMPLATES))) if template is None else template
    x, y = (io, s) if rng.random() < 0.5 else (s, io)
    text = IOI_TEMPLATES[template].format(X=x, Y=y, S=s, IO="", place=_pick(rng, PLACES),
                                          obj=_pick(rng, OBJECTS)).rstrip()
    return Prompt(text, " " + io, {"io": io, "s": s, "template": template,
                                   "order": "ABBA" if x == io else "BABA"})


def ioi_document(rng: np.random.Generator) -> Document:
    p = ioi_story(rng)
    return Document("ioi", p.text + p.answer + ".", dict(p.attrs))


def story_document(rng: np.random.Generator) -> Document:
    a, b = (str(n) for n in rng.choice(NAMES, size=2, replace=False))
    place, obj = _pick(rng, PLACES), _pick(rng, OBJECTS)
    templates = [
        "{a} went to the {place}. {a} bought a {obj}.",
        "{a} met {b} at the {place}. They talked for a long time.",
        "{a} is a friend of {b}. {b} likes the {place}.",
        "{a} found a {obj} in the {place} and showed it to {b}.",
    ]
    text = _pick(rng, templates).format(a=a, b=b, place=place, obj=obj)
    return Document("story", text, {"names": [a, b]})


def repeat_document(rng: np.random.Generator) -> Document:
    """Random words, repeated: the data that makes induction heads worth learning."""
    pool = _word_pool()
    length = int(rng.integers(4, 31))
    words = [str(w) for w in rng.choice(pool, size=length)]
    times = int(rng.integers(2, 4))
    text = " ".join(" ".join(words) for _ in range(times))
    return Document("repeat", text, {"length": length, "times": times})


def python_document(rng: np.random.Generator) -> Document:
    f, cls = _pick(rng, PY_FUNCS), _pick(rng, PY_CLASSES)
    a, b = (str(v) for v in rng.choice(PY_VARS, size=2, replace=False))
    op, n = _pick(rng, PY_OPS), int(rng.integers(2, 10))
    nums = ", ".join(str(int(v)) for v in rng.integers(0, 10, size=int(rng.integers(2, 6))))
    snippets = [
        f"def {f}({a}, {b}):\n    return {a} {op} {b}\n",
        f"for {a} in range({n}):\n    print({a})\n",
        f"{a} = [{nums}]\n{b} = sum({a})\n",
        f"class {cls}:\n    def __init__(self, {a}):\n        self.{a} = {a}\n",
        f"def {f}({a}):\n    if {a} > {n}:\n        return {a}\n    return {n}\n",
    ]
    return Document("python", _pick(rng, snippets))


def water_document(rng: np.random.Generator) -> Document:
    w1, w2 = (str(w) for w in rng.choice(WATER_WORDS, size=2, replace=False))
    adj1, adj2 = (str(w) for w in rng.choice(WATER_ADJECTIVES, size=2))
    templates = [
        "The {w1} was {adj1} and the {w2} was {adj2}.",
        "We watched the {w1} from the boat. The {w2} looked {adj1}.",
        "After the {w1}, the {w2} became {adj1}.",
    ]
    return Document("water", _pick(rng, templates).format(w1=w1, w2=w2, adj1=adj1, adj2=adj2))


def conclusion_document(rng: np.random.Generator) -> Document:
    return Document("conclusion", f"{_pick(rng, CONCLUDERS)} {_pick(rng, CLAIMS)}.")


def sequence_document(rng: np.random.Generator) -> Document:
    kind = int(rng.integers(3))
    if kind == 0:
        start = int(rng.integers(1, 50))
        items = [str(i) for i in range(start, start + int(rng.integers(4, 12)))]
    else:
        cycle = DAYS if kind == 1 else MONTHS
        start = int(rng.integers(len(cycle)))
        items = [cycle[(start + i) % len(cycle)] for i in range(int(rng.integers(3, 9)))]
    return Document("sequence", ", ".join(items) + ".")


def rule_sequence(rng: np.random.Generator, length: int, noise: float = 0.15) -> list[int]:
    """Two random symbols, then each next one given by RULE_TABLE from the two before it, except
    that a `noise` share are random (which breaks the rule's cycles, so copying an earlier stretch
    does not work and the rule must be learned)."""
    seq = [int(rng.integers(16)), int(rng.integers(16))]
    while len(seq) < length:
        follows = rng.random() >= noise
        seq.append(int(RULE_TABLE[seq[-2], seq[-1]]) if follows else int(rng.integers(16)))
    return seq


def rule_document(rng: np.random.Generator) -> Document:
    seq = rule_sequence(rng, int(rng.integers(12, 41)))
    return Document("rule", "rule: " + " ".join(RULE_SYMBOLS[i] for i in seq), {"symbols": seq})


_GENERATORS = {
    "country": country_document, "state": state_document, "ioi": ioi_document,
    "story": story_document, "repeat": repeat_document, "python": python_document,
    "water": water_document, "conclusion": conclusion_document, "sequence": sequence_document,
    "rule": rule_document,
}


def _word_pool() -> list[str]:
    words = set(NAMES) | set(PLACES) | set(OBJECTS) | set(WATER_WORDS) | set(WATER_ADJECTIVES)
    words |= set(DAYS) | set(MONTHS) | set(PY_VARS)
    for country, (capital, continent, language) in COUNTRIES.items():
        words |= {country, capital, language} if " " not in country + capital else {language}
    words |= {s for s in US_STATES if " " not in s}
    return sorted(words)


# --- Streams and prompt sets --------------------------------------------------------------------

def sample_document(rng: np.random.Generator, family: str | None = None) -> Document:
    """One document, its family drawn by FAMILY_WEIGHTS unless given."""
    if family is None:
        p = np.array([FAMILY_WEIGHTS[f] for f in FAMILIES])
        family = FAMILIES[int(rng.choice(len(FAMILIES), p=p / p.sum()))]
    if family not in _GENERATORS:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    return _GENERATORS[family](rng)


def documents(seed: int, n: int, family: str | None = None) -> list[Document]:
    """n documents from a seed: the same seed always gives the same list."""
    rng = np.random.default_rng(seed)
    return [sample_document(rng, family) for _ in range(n)]


def capital_prompts(template: str = "The capital of {} is") -> list[Prompt]:
    """'The capital of X is' for every country and US state, answered with its capital. Another
    template the training text uses ("The capital city of {} is") gives prompts for a held-out
    test; each template must end just before the answer."""
    prompts = [Prompt(template.format(c), " " + cap, {"kind": "country", "subject": c,
                                                      "continent": cont})
               for c, (cap, cont, _) in COUNTRIES.items()]
    prompts += [Prompt(template.format(s), " " + cap, {"kind": "state", "subject": s})
                for s, cap in US_STATES.items()]
    return prompts


def ioi_prompts(n: int = 100, seed: int = 0) -> list[Prompt]:
    """n indirect-object stories (half ABBA, half BABA on average), each ending in ' to'."""
    rng = np.random.default_rng(seed)
    return [ioi_story(rng) for _ in range(n)]


def tokenizer_corpus(seed: int = 0, n: int = 20000) -> list[str]:
    """Text the tokenizer is trained on: every family, every fact at least once."""
    texts = [d.text for d in documents(seed, n)]
    texts += [country_document(np.random.default_rng(i), c).text for i, c in enumerate(COUNTRIES)]
    texts += [state_document(np.random.default_rng(i), s).text for i, s in enumerate(US_STATES)]
    return texts
