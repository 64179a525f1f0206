"""The fixed world the training data talks about: capitals, animals, colours, sizes, people.

Every fact the default model is taught comes from these tables, so the held-out split can
ask new questions about known facts and a judge can tell a right answer from a wrong one.
"""

from __future__ import annotations

from dataclasses import dataclass

CAPITALS: dict[str, str] = {
    "France": "Paris", "Italy": "Rome", "Norway": "Oslo", "Spain": "Madrid",
    "Germany": "Berlin", "Japan": "Tokyo", "Egypt": "Cairo", "Canada": "Ottawa",
    "Peru": "Lima", "Kenya": "Nairobi", "Greece": "Athens", "Portugal": "Lisbon",
    "Sweden": "Stockholm", "Poland": "Warsaw", "Austria": "Vienna", "Ireland": "Dublin",
    "Finland": "Helsinki", "Denmark": "Copenhagen", "China": "Beijing", "Russia": "Moscow",
    "Mexico": "Mexico City", "Brazil": "Brasilia", "Argentina": "Buenos Aires",
    "Chile": "Santiago", "Cuba": "Havana", "Turkey": "Ankara", "Thailand": "Bangkok",
    "Vietnam": "Hanoi", "Australia": "Canberra", "Hungary": "Budapest",
    "Belgium": "Brussels", "Switzerland": "Bern", "Morocco": "Rabat", "Ghana": "Accra",
    "India": "New Delhi", "Iran": "Tehran", "Iceland": "Reykjavik", "Colombia": "Bogota",
}


@dataclass(frozen=True)
class Animal:
    """One animal: its class, number of legs, whether it flies, and a size rank (0 = tiny)."""

    name: str
    kind: str
    num_legs: int
    can_fly: bool
    size: int


ANIMALS: tuple[Animal, ...] = (
    Animal("ant", "insect", 6, False, 0), Animal("bee", "insect", 6, True, 0),
    Animal("spider", "arachnid", 8, False, 0), Animal("mouse", "mammal", 4, False, 1),
    Animal("sparrow", "bird", 2, True, 1), Animal("frog", "amphibian", 4, False, 1),
    Animal("bat", "mammal", 2, True, 1), Animal("rabbit", "mammal", 4, False, 2),
    Animal("cat", "mammal", 4, False, 2), Animal("owl", "bird", 2, True, 2),
    Animal("duck", "bird", 2, True, 2), Animal("salmon", "fish", 0, False, 2),
    Animal("penguin", "bird", 2, False, 3), Animal("eagle", "bird", 2, True, 3),
    Animal("snake", "reptile", 0, False, 3), Animal("dog", "mammal", 4, False, 3),
    Animal("sheep", "mammal", 4, False, 4), Animal("shark", "fish", 0, False, 5),
    Animal("lion", "mammal", 4, False, 5), Animal("tiger", "mammal", 4, False, 5),
    Animal("crocodile", "reptile", 4, False, 5), Animal("bear", "mammal", 4, False, 6),
    Animal("horse", "mammal", 4, False, 6), Animal("cow", "mammal", 4, False, 6),
    Animal("giraffe", "mammal", 4, False, 7), Animal("elephant", "mammal", 4, False, 8),
    Animal("whale", "mammal", 0, False, 9),
)

ANIMAL_KINDS: tuple[str, ...] = ("mammal", "bird", "fish", "insect", "reptile")

# Things with one obvious colour, written as they read in a sentence.
COLOURS: dict[str, str] = {
    "the sky": "blue", "the sea": "blue", "grass": "green", "a leaf": "green",
    "a cucumber": "green", "snow": "white", "milk": "white", "a cloud": "white",
    "coal": "black", "a crow": "black", "a banana": "yellow", "a lemon": "yellow",
    "the sun": "yellow", "a tomato": "red", "a strawberry": "red", "blood": "red",
    "a cherry": "red", "an orange": "orange", "a carrot": "orange", "a pumpkin": "orange",
    "chocolate": "brown", "a flamingo": "pink", "a polar bear": "white",
}
COLOUR_NAMES: tuple[str, ...] = (
    "red", "blue", "green", "yellow", "white", "black", "orange", "brown", "pink", "purple",
)

# Things ordered from smallest to largest; the index is the size.
SIZES: tuple[str, ...] = (
    "an ant", "a coin", "a mouse", "an apple", "a cat", "a dog", "a bicycle", "a horse",
    "a car", "an elephant", "a bus", "a whale", "a house", "a mountain", "the moon",
    "the earth", "the sun",
)

NAMES: tuple[tuple[str, str], ...] = (
    ("Ann", "she"), ("Ben", "he"), ("Clara", "she"), ("David", "he"), ("Emma", "she"),
    ("Felix", "he"), ("Grace", "she"), ("Hugo", "he"), ("Ida", "she"), ("Jonas", "he"),
    ("Karin", "she"), ("Leo", "he"), ("Maria", "she"), ("Nils", "he"), ("Olga", "she"),
    ("Paul", "he"), ("Rosa", "she"), ("Sam", "he"), ("Tina", "she"), ("Victor", "he"),
    ("Wendy", "she"), ("Omar", "he"), ("Yara", "she"), ("Zoe", "she"), ("Lucas", "he"),
    ("Mia", "she"), ("Noah", "he"), ("Sofia", "she"), ("Ivan", "he"), ("Lena", "she"),
    ("Tom", "he"), ("Julia", "she"), ("Marco", "he"), ("Nora", "she"), ("Peter", "he"),
    ("Hana", "she"), ("Ali", "he"), ("Eva", "she"), ("Kenji", "he"), ("Amara", "she"),
)

JOBS: tuple[str, ...] = (
    "teacher", "doctor", "nurse", "engineer", "baker", "pilot", "farmer", "lawyer",
    "painter", "writer", "chef", "dentist", "driver", "artist", "architect", "musician",
    "plumber", "scientist", "librarian", "waiter", "student", "designer", "carpenter",
    "journalist", "accountant", "programmer", "gardener", "electrician",
)

JOB_DESCRIPTIONS: dict[str, str] = {
    "teacher": "helps students learn", "doctor": "treats sick people",
    "nurse": "cares for patients", "engineer": "designs and builds machines",
    "baker": "makes bread and cakes", "pilot": "flies planes", "farmer": "grows food",
    "lawyer": "gives advice about the law", "painter": "paints pictures",
    "writer": "writes books", "chef": "cooks food in a restaurant",
    "dentist": "looks after teeth", "librarian": "looks after books in a library",
    "gardener": "looks after plants", "programmer": "writes computer programs",
    "musician": "plays music",
}

CITIES: tuple[str, ...] = tuple(CAPITALS.values()) + (
    "Lyon", "Milan", "Bergen", "Munich", "Osaka", "Boston", "Chicago", "Toronto", "Porto",
)

PETS: tuple[str, ...] = ("dog", "cat", "rabbit", "parrot", "horse", "fish", "hamster", "turtle")

WORDS: tuple[str, ...] = (
    "apple", "house", "river", "green", "table", "music", "water", "light", "paper", "stone",
    "cloud", "dream", "bread", "chair", "plant", "smile", "ocean", "train", "happy", "night",
    "sun", "cat", "dog", "book", "tree", "bird", "fish", "door", "moon", "star", "rain",
    "snow", "road", "milk", "ship", "lamp", "frog", "hand", "king", "blue", "garden",
    "window", "orange", "yellow", "summer", "winter", "forest", "planet", "little", "silver",
    "pencil", "rocket", "coffee", "animal", "friend", "castle", "banana", "school", "bottle",
    "letter", "number", "morning", "kitchen", "picture", "teacher", "chicken", "weather",
    "holiday", "library", "monkey", "guitar", "island", "bridge", "candle", "mirror", "flower",
    "cookie", "engine", "market", "tiger", "zebra", "lemon", "honey", "piano", "robot",
    "storm", "queen", "horse", "mouse", "sugar", "spoon", "clock", "cake", "wind", "fire",
)

# Topics a one-sentence answer can explain.
CONCEPTS: dict[str, str] = {
    "a calculator": "A calculator is a tool that does arithmetic.",
    "a library": "A library is a place where people can borrow books.",
    "a computer": "A computer is a machine that runs programs.",
    "the sun": "The sun is the star at the centre of our solar system.",
    "the moon": "The moon is the natural satellite of the earth.",
    "rain": "Rain is water that falls from clouds.",
    "a map": "A map is a drawing that shows where places are.",
    "a clock": "A clock is a device that shows the time.",
    "a bicycle": "A bicycle is a vehicle with two wheels that you pedal.",
    "a river": "A river is a large stream of water that flows to the sea.",
    "an island": "An island is a piece of land surrounded by water.",
    "a dictionary": "A dictionary is a book that explains the meaning of words.",
    "a thermometer": "A thermometer is a tool that measures temperature.",
    "a planet": "A planet is a large body that moves around a star.",
    "a recipe": "A recipe is a list of steps for cooking a dish.",
    "a bridge": "A bridge is a structure that lets people cross a river or a road.",
}


def with_article(noun: str) -> str:
    """`noun` with "a" or "an" in front."""
    return ("an " if noun[0] in "aeiou" else "a ") + noun
