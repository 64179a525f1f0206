"""One generator per skill: each draws a conversation from the world tables with a given rng.

Every generator returns an `Example`; its `key` is what the held-out split hashes, so two
phrasings of one arithmetic expression always land in the same split.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from sglc.training import world

Message = dict[str, str]

REACT_SYSTEM = "You are a helpful assistant. Use the calculator tool for arithmetic."
SEARCH_SYSTEM = "You are a helpful assistant. Use the search tool to look up facts."
TOOLS_SYSTEM = "You are a helpful assistant. You can use the tools calculator and search."
JSON_SYSTEM = "You extract data from text. Reply with JSON only."


@dataclass(frozen=True)
class Example:
    """One conversation, the final answer it ends with, and the key its split is decided by."""

    skill: str
    messages: tuple[Message, ...]
    answer: str
    key: str


def _example(skill: str, messages: list[Message], answer: str, key: str) -> Example:
    return Example(skill, tuple(messages), answer, key)


def _msg(role: str, content: str) -> Message:
    return {"role": role, "content": content}


# ---------------------------------------------------------------- ReAct with tools

_OP_WORDS = {"+": ("plus",), "-": ("minus",), "*": ("times", "multiplied by")}
_ARITH_TEMPLATES = {
    "+": ("What is the sum of {a} and {b}?", "Add {a} and {b}.", "What is {a} added to {b}?"),
    "-": ("Subtract {b} from {a}.", "What is {a} take away {b}?",
          "What is the difference between {a} and {b}?"),
    "*": ("What is the product of {a} and {b}?", "Multiply {a} by {b}.",
          "What do you get if you multiply {a} by {b}?"),
}
_GENERIC_TEMPLATES = (
    "What is {a}{op}{b}?", "What is {a} {op} {b}?", "Compute {a}{op}{b}.", "Calculate {a} {op} {b}.",
    "What is {a} {word} {b}?", "How much is {a} {word} {b}?", "Calculate {a} {word} {b}.",
    "Please compute {a} {word} {b}.", "{a}{op}{b} = ?", "What does {a} {word} {b} equal?",
)


def _number(rng: random.Random) -> int:
    num_digits = rng.randint(1, 3)
    return rng.randint(1 if num_digits == 1 else 10 ** (num_digits - 1), 10**num_digits - 1)


def arithmetic_question(rng: random.Random) -> tuple[str, str, int]:
    """A phrasing of `a op b`, the expression the calculator gets, and its value."""
    op = rng.choice("+-*")
    a, b = _number(rng), _number(rng)
    expression = f"{a}{op}{b}"
    value = a + b if op == "+" else a - b if op == "-" else a * b
    if rng.random() < 0.35:
        template = rng.choice(_ARITH_TEMPLATES[op])
    else:
        template = rng.choice(_GENERIC_TEMPLATES)
    question = template.format(a=a, b=b, op=op, word=rng.choice(_OP_WORDS[op]))
    return question, expression, value


def _react(system: str, question: str, tool: str, tool_input: str, thought: str,
           observation: str, answer: str) -> list[Message]:
    return [
        _msg("system", system),
        _msg("user", f"Question: {question}"),
        _msg("assistant", f"Thought: {thought}\nAction: {tool}\nInput: {tool_input}"),
        _msg("user", f"Observation: {observation}"),
        _msg("assistant", f"Thought: I know the answer.\nAction: finish\nInput: {answer}"),
    ]


def react_calculator(rng: random.Random) -> Example:
    """Arithmetic through the calculator tool in the ReAct format."""
    question, expression, value = arithmetic_question(rng)
    system = REACT_SYSTEM if rng.random() < 0.85 else TOOLS_SYSTEM
    messages = _react(system, question, "calculator", expression,
                      f"I need to compute {expression}.", str(value), str(value))
    return _example("react_calculator", messages, str(value), expression)


def react_search(rng: random.Random) -> Example:
    """A capital looked up through the search tool in the ReAct format."""
    country, capital = rng.choice(sorted(world.CAPITALS.items()))
    question = rng.choice((
        "What is the capital of {c}?", "Which city is the capital of {c}?",
        "Name the capital of {c}.", "What city is {c}'s capital?",
    )).format(c=country)
    system = SEARCH_SYSTEM if rng.random() < 0.7 else TOOLS_SYSTEM
    messages = _react(system, question, "search", f"capital of {country}",
                      f"I need to look up the capital of {country}.",
                      f"{capital} is the capital of {country}.", capital)
    return _example("react_search", messages, capital, question)


# ---------------------------------------------------------------- JSON extraction

_PERSON_TEMPLATES = (
    "{name} is {age} years old and lives in {city}.",
    "{name} is a {age}-year-old {job} from {city}.",
    "{name}, {age}, works as {a_job} in {city}.",
    "Meet {name}. {He} works as {a_job} in {city} and is {age} years old.",
    "{city} is home to {name}, who is {age} and works as {a_job}.",
    "At {age}, {name} is {a_job} living in {city}.",
    "My friend {name} lives in {city}. {He} is {age} and has a {pet}.",
    "{name} works as {a_job}. {He} is {age} years old.",
    "{name} lives in {city} with {his} {pet}.",
    "Last year {name} moved to {city} to work as {a_job}.",
    "{name} is {a_job}. {His} favourite colour is {color}.",
    "{name} ({age}) is {a_job} in {city} who loves the colour {color}.",
    "Name: {name}. Age: {age}. City: {city}. Job: {job}.",
    "{name} from {city} is {age}, owns a {pet} and likes {color}.",
)
_EXTRACT_PROMPTS = (
    "Extract {fields} as JSON.\nText: {text}",
    "Text: {text}\nReturn a JSON object with the keys {fields}.",
    "From the sentence below, extract the fields {fields} in JSON.\n{text}",
    "Extract the person's {fields} from this text as JSON: {text}",
    "{text}\n\nGive {fields} as a JSON object.",
)
_FIELDS_IN_ORDER = ("name", "age", "city", "job", "pet", "color")


def _person(rng: random.Random) -> dict[str, object]:
    name, pronoun = rng.choice(world.NAMES)
    job = rng.choice(world.JOBS)
    return {
        "name": name, "age": rng.randint(18, 89), "city": rng.choice(world.CITIES), "job": job,
        "pet": rng.choice(world.PETS), "color": rng.choice(world.COLOUR_NAMES),
        "_he": pronoun, "_his": "her" if pronoun == "she" else "his",
    }


def _fields_of(template: str) -> list[str]:
    present = [f for f in _FIELDS_IN_ORDER if "{" + f + "}" in template]
    return present + (["job"] if "{a_job}" in template else [])


def _field_list(fields: list[str]) -> str:
    return fields[0] if len(fields) == 1 else ", ".join(fields[:-1]) + " and " + fields[-1]


def json_extraction(rng: random.Random) -> Example:
    """Extract some of a person's fields from a sentence; the answer is compact JSON."""
    template = rng.choice(_PERSON_TEMPLATES)
    person = _person(rng)
    text = template.format(
        **{k: v for k, v in person.items() if not k.startswith("_")},
        a_job=world.with_article(str(person["job"])),
        he=person["_he"], He=str(person["_he"]).capitalize(),
        his=person["_his"], His=str(person["_his"]).capitalize(),
    )
    available = [f for f in _FIELDS_IN_ORDER if f in _fields_of(template)]
    others = [f for f in available if f != "name"]
    chosen = ["name"] + sorted(rng.sample(others, rng.randint(1, len(others))),
                               key=_FIELDS_IN_ORDER.index)
    if rng.random() < 0.2:
        rng.shuffle(chosen)
    answer = json.dumps({f: person[f] for f in chosen}, separators=(",", ":"))
    prompt = rng.choice(_EXTRACT_PROMPTS).format(fields=_field_list(chosen), text=text)
    messages = ([_msg("system", JSON_SYSTEM)] if rng.random() < 0.3 else [])
    messages += [_msg("user", prompt), _msg("assistant", answer)]
    return _example("json_extraction", messages, answer, prompt)
