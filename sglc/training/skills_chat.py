"""Chat skills: small instructions on words and numbers, and recalling earlier turns."""

from __future__ import annotations

import random

from sglc.training import world
from sglc.training.skills import Example, _example, _msg
from sglc.training.skills_facts import yes_no

# ---------------------------------------------------------------- small instructions


def _reverse(rng: random.Random) -> tuple[str, str]:
    word = rng.choice(world.WORDS)
    prompt = rng.choice(('Reverse the word "{w}".', 'Write "{w}" backwards.',
                         "Spell the word {w} in reverse."))
    return prompt.format(w=word), word[::-1]


def _count_letters(rng: random.Random) -> tuple[str, str]:
    word = rng.choice(world.WORDS)
    prompt = rng.choice(('How many letters are in the word "{w}"?',
                         'Count the letters in "{w}".', "How many letters does {w} have?"))
    return prompt.format(w=word), str(len(word))


def _sort_numbers(rng: random.Random) -> tuple[str, str]:
    numbers = rng.sample(range(1, 100), 3)
    descending = rng.random() < 0.3
    order = "from largest to smallest" if descending else "from smallest to largest"
    prompt = rng.choice(("Sort these numbers {o}: {n}", "Put {n} in order {o}.",
                         "Order the numbers {n} {o}."))
    shown = ", ".join(map(str, numbers))
    result = ", ".join(map(str, sorted(numbers, reverse=descending)))
    return prompt.format(o=order, n=shown), result


def _uppercase(rng: random.Random) -> tuple[str, str]:
    text = " ".join(rng.sample(world.WORDS, rng.randint(1, 3)))
    prompt = rng.choice(('Write "{t}" in uppercase.', "Convert to uppercase: {t}",
                         'Make "{t}" all capital letters.'))
    return prompt.format(t=text), text.upper()


def instruction(rng: random.Random) -> Example:
    """Reverse a word, count its letters, sort three numbers, or uppercase some words."""
    prompt, answer = rng.choice((_reverse, _count_letters, _sort_numbers, _uppercase))(rng)
    return _example("instruction", [_msg("user", prompt), _msg("assistant", answer)],
                    answer, prompt)


# ---------------------------------------------------------------- recall


def _user_facts(rng: random.Random) -> dict[str, tuple[str, str, str]]:
    """Facts a user may state: fact -> (statement, question, expected answer)."""
    name = rng.choice(world.NAMES)[0]
    city, pet = rng.choice(world.CITIES), rng.choice(world.PETS)
    colour, job = rng.choice(world.COLOUR_NAMES), rng.choice(world.JOBS)
    age, number = rng.randint(18, 89), rng.randint(10, 9999)
    return {
        "name": (f"My name is {name}.", "What is my name?", f"Your name is {name}."),
        "city": (f"I live in {city}.", "Where do I live?", f"You live in {city}."),
        "pet": (f"I have a {pet}.", "What pet do I have?", f"You have a {pet}."),
        "colour": (f"My favourite colour is {colour}.", "What is my favourite colour?",
                   f"Your favourite colour is {colour}."),
        "age": (f"I am {age} years old.", "How old am I?", f"You are {age} years old."),
        "job": (f"I work as {world.with_article(job)}.", "What is my job?",
                f"You work as {world.with_article(job)}."),
        "number": (f"Please remember the number {number}.",
                   "What number did I ask you to remember?", str(number)),
    }


def recall(rng: random.Random) -> Example:
    """The user states facts, maybe asks something else, then asks about one of the facts."""
    facts = _user_facts(rng)
    stated = rng.sample(sorted(facts), rng.randint(1, 3))
    first = " ".join(facts[f][0] for f in stated)
    if "name" in stated:
        name = facts["name"][2].removeprefix("Your name is ").rstrip(".")
        reply = f"Nice to meet you, {name}!"
    else:
        reply = rng.choice(("Got it, I will remember that.", "Thanks for telling me."))
    messages = [_msg("user", first), _msg("assistant", reply)]
    if rng.random() < 0.4:
        messages += list(yes_no(rng).messages)
    asked = rng.choice(stated)
    _, question, answer = facts[asked]
    messages += [_msg("user", question), _msg("assistant", answer)]
    key = "\n".join(m["content"] for m in messages if m["role"] == "user")
    return _example("recall", messages, answer, key)


# ---------------------------------------------------------------- repeat


def _item(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return str(rng.randint(0, 10 ** rng.randint(1, 4) - 1))
    if kind == 1:
        return rng.choice(world.NAMES)[0]
    if kind == 2:
        return rng.choice(world.CITIES)
    return rng.choice(world.WORDS)


def repeat(rng: random.Random) -> Example:
    """Repeat some numbers and words exactly: the plain copying the other skills build on."""
    text = " ".join(_item(rng) for _ in range(rng.randint(1, 6)))
    prompt = rng.choice(("Repeat after me: {t}", "Say exactly this: {t}", "Copy this text: {t}",
                         'Repeat "{t}".')).format(t=text)
    return _example("repeat", [_msg("user", prompt), _msg("assistant", text)], text, prompt)
