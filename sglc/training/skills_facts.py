"""Skills about the world tables: multiple choice, yes/no, judge verdicts, one-sentence answers."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from sglc.training import world
from sglc.training.skills import Example, _example, _msg

LETTERS = "ABCD"


@dataclass(frozen=True)
class FactQuestion:
    """A question about the world, its right answer and some clearly wrong ones."""

    question: str
    answer: str
    wrong: tuple[str, ...]
    fact: str  # the sentence that answers the question, said before a verdict


def _cap(text: str) -> str:
    """`text` with its first letter upper-cased (and the rest kept: "the sky" -> "The sky")."""
    return text[:1].upper() + text[1:]


def _capital_question(rng: random.Random) -> FactQuestion:
    country, capital = rng.choice(sorted(world.CAPITALS.items()))
    others = [c for c in world.CAPITALS.values() if c != capital]
    question = rng.choice(("What is the capital of {c}?", "Which city is the capital of {c}?"))
    return FactQuestion(question.format(c=country), capital, tuple(rng.sample(others, 3)),
                        f"The capital of {country} is {capital}.")


def _country_question(rng: random.Random) -> FactQuestion:
    country, capital = rng.choice(sorted(world.CAPITALS.items()))
    others = [c for c in world.CAPITALS if c != country]
    return FactQuestion(f"{capital} is the capital of which country?", country,
                        tuple(rng.sample(others, 3)), f"{capital} is the capital of {country}.")


def _animal_kind_question(rng: random.Random) -> FactQuestion:
    kind = rng.choice(world.ANIMAL_KINDS)
    right = rng.choice([a.name for a in world.ANIMALS if a.kind == kind])
    wrong = [a.name for a in world.ANIMALS if a.kind != kind]
    return FactQuestion(f"Which of these animals is a {kind}?", right, tuple(rng.sample(wrong, 3)),
                        f"{_cap(world.with_article(right))} is a {kind}.")


def _flying_question(rng: random.Random) -> FactQuestion:
    right = rng.choice([a.name for a in world.ANIMALS if a.can_fly])
    wrong = [a.name for a in world.ANIMALS if not a.can_fly]
    return FactQuestion("Which of these animals can fly?", right, tuple(rng.sample(wrong, 3)),
                        f"{_cap(world.with_article(right))} can fly.")


def _legs_question(rng: random.Random) -> FactQuestion:
    animal = rng.choice(world.ANIMALS)
    wrong = [str(n) for n in (0, 2, 4, 6, 8) if n != animal.num_legs]
    name = world.with_article(animal.name)
    return FactQuestion(f"How many legs does {name} have?", str(animal.num_legs),
                        tuple(rng.sample(wrong, 3)), f"{_cap(name)} has {animal.num_legs} legs.")


def _colour_question(rng: random.Random) -> FactQuestion:
    thing, colour = rng.choice(sorted(world.COLOURS.items()))
    wrong = [c for c in world.COLOUR_NAMES if c != colour]
    return FactQuestion(f"What colour is {thing}?", colour, tuple(rng.sample(wrong, 3)),
                        f"{_cap(thing)} is {colour}.")


def _size_question(rng: random.Random) -> FactQuestion:
    things = rng.sample(range(len(world.SIZES)), 4)
    largest = rng.random() < 0.5
    right = max(things) if largest else min(things)
    word = "largest" if largest else "smallest"
    wrong = tuple(world.SIZES[i] for i in things if i != right)
    return FactQuestion(f"Which of these is the {word}?", world.SIZES[right], wrong,
                        f"{_cap(world.SIZES[right])} is the {word}.")


FACT_QUESTIONS = (_capital_question, _country_question, _animal_kind_question,
                  _flying_question, _legs_question, _colour_question, _size_question)


def fact_question(rng: random.Random) -> FactQuestion:
    """A random question about the world tables."""
    return rng.choice(FACT_QUESTIONS)(rng)


# ---------------------------------------------------------------- multiple choice

_OPTION_STYLES = ("{l}) {o}", "{l}. {o}", "({l}) {o}", "{l}: {o}")
_MC_PROMPTS = (
    "{q}\n{options}\nAnswer with the letter.",
    "Question: {q}\n{options}\nAnswer:",
    "Choose the correct option.\n{q}\n{options}",
    "{q}\n{options}\nReply with A, B, C or D.",
    "Answer with the letter of the correct option.\nQuestion: {q}\n{options}",
)
MC_ANSWER_PREFIX = "The answer is "
_FINAL = {
    "multiple_choice": re.compile(rf"{MC_ANSWER_PREFIX}([{LETTERS}])\.?\s*$"),
    "judge": re.compile(r"(\[\[[AB]\]\])\s*$"),
}


def final_answer(skill: str, reply: str) -> str:
    """The answer a reply ends with: the letter of a multiple-choice reply, a judge's verdict,
    else the stripped reply ("" when a reasoned reply lacks its final answer)."""
    if skill not in _FINAL:
        return reply.strip()
    match = _FINAL[skill].search(reply)
    return match.group(1) if match else ""


def multiple_choice(rng: random.Random) -> Example:
    """A fact question with lettered options, answered with a letter after a short reasoning.

    The reply states the fact, checks the options in order up to the right one, then names
    its letter: ``The capital of Italy is Rome. A. Bern: no. B. Rome: yes. The answer is B.``
    Each step is a copy or a yes/no a small model can do; picking the letter straight from
    the question (the letter alone) it guessed A or D on capitals, and after the fact alone
    it stated the fact every time but still missed the letter half the time.
    """
    fact = fact_question(rng)
    num_options = rng.choice((3, 4, 4))
    options = [fact.answer, *fact.wrong[: num_options - 1]]
    rng.shuffle(options)
    style = rng.choice(_OPTION_STYLES)
    lines = "\n".join(style.format(l=LETTERS[i], o=o) for i, o in enumerate(options))
    prompt = rng.choice(_MC_PROMPTS).format(q=fact.question, options=lines)
    right = options.index(fact.answer)
    scan = " ".join(f"{LETTERS[i]}. {options[i]}: {'yes' if i == right else 'no'}."
                    for i in range(right + 1))
    letter = LETTERS[right]
    reply = f"{fact.fact} {scan} {MC_ANSWER_PREFIX}{letter}."
    return _example("multiple_choice", [_msg("user", prompt), _msg("assistant", reply)],
                    letter, prompt)


# ---------------------------------------------------------------- yes / no

def _yes_no_capital(rng: random.Random, truth: bool) -> str:
    country, capital = rng.choice(sorted(world.CAPITALS.items()))
    if not truth:
        capital = rng.choice([c for c in world.CAPITALS.values() if c != capital])
    return rng.choice(("Is {cap} the capital of {c}?", "Is the capital of {c} {cap}?")).format(
        cap=capital, c=country)


def _yes_no_animal(rng: random.Random, truth: bool) -> str:
    animal = rng.choice(world.ANIMALS)
    name = world.with_article(animal.name)
    kind = rng.choice(("kind", "fly", "legs"))
    if kind == "fly":
        others = [a for a in world.ANIMALS if a.can_fly == truth]
        return f"Can {world.with_article(rng.choice(others).name)} fly?"
    if kind == "legs":
        num_legs = animal.num_legs if truth else rng.choice(
            [n for n in (0, 2, 4, 6, 8) if n != animal.num_legs])
        return f"Does {name} have {num_legs} legs?"
    kinds = [k for k in (*world.ANIMAL_KINDS, "arachnid", "amphibian") if (k == animal.kind) == truth]
    return f"Is {name} {world.with_article(rng.choice(kinds))}?"


def _yes_no_colour(rng: random.Random, truth: bool) -> str:
    thing, colour = rng.choice(sorted(world.COLOURS.items()))
    if not truth:
        colour = rng.choice([c for c in world.COLOUR_NAMES if c != colour])
    return f"Is {thing} {colour}?"


def _yes_no_size(rng: random.Random, truth: bool) -> str:
    i, j = sorted(rng.sample(range(len(world.SIZES)), 2))
    small, big = world.SIZES[i], world.SIZES[j]
    if rng.random() < 0.5:
        x, y = (big, small) if truth else (small, big)
        return f"Is {x} {rng.choice(('bigger', 'larger'))} than {y}?"
    x, y = (small, big) if truth else (big, small)
    return f"Is {x} smaller than {y}?"


_YES_NO_KINDS = (_yes_no_capital, _yes_no_animal, _yes_no_colour, _yes_no_size)
_YES_NO_PROMPTS = ("{q}", "{q} Answer yes or no.", "Answer with yes or no. {q}",
                   "Question: {q}\nAnswer yes or no.", "True or false, answer yes or no: {q}")


def yes_no(rng: random.Random) -> Example:
    """A yes/no question about the world tables; half are true."""
    truth = rng.random() < 0.5
    question = rng.choice(_YES_NO_KINDS)(rng, truth)
    prompt = rng.choice(_YES_NO_PROMPTS).format(q=question)
    answer = "Yes" if truth else "No"
    return _example("yes_no", [_msg("user", prompt), _msg("assistant", answer)], answer, prompt)


# ---------------------------------------------------------------- judge

_JUDGE_PROMPTS = (
    "Which answer is better?\nQuestion: {q}\nAnswer A: {a}\nAnswer B: {b}\n"
    "Reply with [[A]] or [[B]].",
    "Question: {q}\n[A] {a}\n[B] {b}\nWhich answer is correct? Answer [[A]] or [[B]].",
    "[Question]\n{q}\n\n[Assistant A]\n{a}\n\n[Assistant B]\n{b}\n\n"
    'Output your final verdict: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better.',
    "Compare the two answers to the question and say which is right.\n"
    "Question: {q}\nA: {a}\nB: {b}\nVerdict ([[A]] or [[B]]):",
)
_BAD_ANSWERS = ("I don't know.", "I like turtles.", "Maybe.", "The weather is nice today.",
                "Bananas.", "No idea, sorry.")


def _small_sum(rng: random.Random) -> FactQuestion:
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    op = rng.choice("+*")
    value = a + b if op == "+" else a * b
    wrong = [str(value + d) for d in (-3, -2, -1, 1, 2, 3, 10) if value + d >= 0]
    return FactQuestion(f"What is {a}{op}{b}?", str(value), tuple(rng.sample(wrong, 3)),
                        f"{a}{op}{b} = {value}.")


def judge(rng: random.Random) -> Example:
    """Two answers to a question, one clearly right; a short reason, then the verdict.

    The reply is the LLM-as-a-judge form, an explanation then the verdict:
    ``The capital of Italy is Rome. Answer A is wrong. Answer B is right. [[B]]``.
    """
    fact = _small_sum(rng) if rng.random() < 0.2 else fact_question(rng)
    bad = rng.choice(fact.wrong) if rng.random() < 0.7 else rng.choice(_BAD_ANSWERS)
    good = fact.answer
    if rng.random() < 0.3:
        good, bad = f"The answer is {good}.", (f"The answer is {bad}." if bad[-1] != "." else bad)
    right_is_a = rng.random() < 0.5
    a, b = (good, bad) if right_is_a else (bad, good)
    prompt = rng.choice(_JUDGE_PROMPTS).format(q=fact.question, a=a, b=b)
    verdict = "[[A]]" if right_is_a else "[[B]]"
    messages = [_msg("system", "You are a fair judge.")] if rng.random() < 0.3 else []
    checks = " ".join(f"Answer {name} is {'right' if is_good else 'wrong'}."
                      for name, is_good in (("A", right_is_a), ("B", not right_is_a)))
    messages += [_msg("user", prompt), _msg("assistant", f"{fact.fact} {checks} {verdict}")]
    return _example("judge", messages, verdict, prompt)


# ---------------------------------------------------------------- one sentence

_SIZE_WORDS = ("tiny", "small", "small", "medium-sized", "medium-sized", "large", "large",
               "very large", "huge", "huge")


def _describe_animal(rng: random.Random) -> tuple[str, str]:
    animal = rng.choice(world.ANIMALS)
    name = world.with_article(animal.name)
    legs = "no legs" if animal.num_legs == 0 else f"{animal.num_legs} legs"
    flies = "can fly" if animal.can_fly else "cannot fly"
    size = world.with_article(_SIZE_WORDS[animal.size])
    sentence = f"{name.capitalize()} is {size} {animal.kind} with {legs} that {flies}."
    return rng.choice(("Describe {x} in one sentence.", "In one sentence, what is {x}?",
                       "Tell me about {x} in one sentence.")).format(x=name), sentence


def _describe_city(rng: random.Random) -> tuple[str, str]:
    country, capital = rng.choice(sorted(world.CAPITALS.items()))
    return (rng.choice(("Tell me about {x} in one sentence.", "What is {x}? Answer in one sentence.",
                        "In one sentence, what is {x}?")).format(x=capital),
            f"{capital} is the capital of {country}.")


def _describe_job(rng: random.Random) -> tuple[str, str]:
    job, description = rng.choice(sorted(world.JOB_DESCRIPTIONS.items()))
    return (rng.choice(("What does {x} do? Answer in one sentence.",
                        "In one sentence, what does {x} do?")).format(x=world.with_article(job)),
            f"{world.with_article(job).capitalize()} {description}.")


def _describe_concept(rng: random.Random) -> tuple[str, str]:
    concept, sentence = rng.choice(sorted(world.CONCEPTS.items()))
    return (rng.choice(("In one sentence, what is {x}?", "Explain {x} in one sentence.",
                        "What is {x}? Answer in one sentence.")).format(x=concept), sentence)


def _greeting(rng: random.Random) -> tuple[str, str]:
    return (rng.choice(("Hello!", "Hi!", "Hi there.", "Good morning!", "Hey, how are you?")),
            rng.choice(("Hello! How can I help you today?", "Hi! What can I do for you?")))


def one_sentence(rng: random.Random) -> Example:
    """A short question answered with exactly one sentence."""
    kind = rng.choice((_describe_animal, _describe_city, _describe_job, _describe_concept,
                       _describe_concept, _greeting))
    prompt, sentence = kind(rng)
    return _example("one_sentence", [_msg("user", prompt), _msg("assistant", sentence)],
                    sentence, prompt)
