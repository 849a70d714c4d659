"""JSON schemas of varied shapes for the structured-output tests, each with the question the
model is asked. Free-text strings carry a maxLength so a small greedy model cannot ramble
forever inside one; everything else (formats, patterns, enums, bounds) is what is tested.
Left out: xgrammar's "time" format and unbounded digit runs in patterns (`[0-9]+`), where
the greedy model repeats a digit until max_tokens: valid prefixes, but no finished output."""

from __future__ import annotations

NAME = {"type": "string", "maxLength": 24}
TEXT = {"type": "string", "maxLength": 60}


def obj(properties: dict, required: list[str] | None = None, **extra) -> dict:
    out = {"type": "object", "properties": properties, **extra}
    out["required"] = list(properties) if required is None else required
    return out


SCHEMAS: list[tuple[str, dict]] = [
    (
        "Describe a person.",
        obj({"name": NAME, "age": {"type": "integer", "minimum": 0, "maximum": 120}}),
    ),
    (
        "Describe a book.",
        obj(
            {
                "title": TEXT,
                "author": NAME,
                "year": {"type": "integer", "minimum": 1400, "maximum": 2030},
            }
        ),
    ),
    ("Give a color.", obj({"color": {"enum": ["red", "green", "blue"]}})),
    (
        "Rate a movie.",
        obj({"movie": TEXT, "stars": {"type": "integer", "minimum": 1, "maximum": 5}}),
    ),
    (
        "Give a temperature reading.",
        obj({"celsius": {"type": "number", "minimum": -50, "maximum": 60}}),
    ),
    ("Is water wet?", obj({"answer": {"type": "boolean"}})),
    (
        "List three fruits.",
        obj({"fruits": {"type": "array", "items": NAME, "minItems": 3, "maxItems": 3}}),
    ),
    (
        "List some prime numbers.",
        obj(
            {
                "primes": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 5,
                    "items": {"type": "integer", "minimum": 2, "maximum": 100},
                }
            }
        ),
    ),
    ("Give today's date.", obj({"date": {"type": "string", "format": "date"}})),
    ("Give a contact email.", obj({"name": NAME, "email": {"type": "string", "format": "email"}})),
    (
        "Give a server address.",
        obj(
            {
                "host": {"type": "string", "format": "ipv4"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            }
        ),
    ),
    ("Give an ID.", obj({"id": {"type": "string", "format": "uuid"}})),
    ("When is the meeting?", obj({"when": {"type": "string", "format": "date-time"}})),
    (
        "What time is lunch?",
        obj({"time": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}}),
    ),
    ("Give a product code.", obj({"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"}})),
    (
        "Give a US phone number.",
        obj({"phone": {"type": "string", "pattern": r"^\([0-9]{3}\) [0-9]{3}-[0-9]{4}$"}}),
    ),
    (
        "Describe an address.",
        obj(
            {
                "address": obj(
                    {
                        "street": TEXT,
                        "city": NAME,
                        "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
                    }
                )
            }
        ),
    ),
    (
        "Describe a company and its CEO.",
        obj(
            {
                "company": NAME,
                "ceo": obj(
                    {"name": NAME, "since": {"type": "integer", "minimum": 1900, "maximum": 2030}}
                ),
            }
        ),
    ),
    (
        "Describe a team.",
        obj(
            {
                "team": NAME,
                "members": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": obj({"name": NAME, "role": {"enum": ["lead", "dev", "qa"]}}),
                },
            }
        ),
    ),
    (
        "Give a shape.",
        obj(
            {
                "shape": {
                    "anyOf": [
                        obj(
                            {
                                "kind": {"const": "circle"},
                                "radius": {"type": "number", "minimum": 0, "maximum": 100},
                            }
                        ),
                        obj(
                            {
                                "kind": {"const": "square"},
                                "side": {"type": "number", "minimum": 0, "maximum": 100},
                            }
                        ),
                    ]
                }
            }
        ),
    ),
    (
        "Give an identifier.",
        obj(
            {
                "id": {
                    "anyOf": [
                        {"type": "integer", "minimum": 0, "maximum": 9999},
                        {"type": "string", "maxLength": 12},
                    ]
                }
            }
        ),
    ),
    (
        "Describe a user with an optional nickname.",
        obj(
            {
                "name": NAME,
                "nickname": NAME,
                "age": {"type": "integer", "minimum": 0, "maximum": 120},
            },
            required=["name"],
        ),
    ),
    (
        "Describe a pet.",
        obj(
            {
                "name": NAME,
                "species": {"enum": ["cat", "dog", "fish"]},
                "vaccinated": {"type": "boolean"},
            },
            required=["species"],
        ),
    ),
    (
        "Give a value that may be missing.",
        obj({"value": {"type": ["integer", "null"], "minimum": 0, "maximum": 10}}),
    ),
    (
        "Give a price.",
        obj(
            {
                "amount": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000},
                "currency": {"enum": ["USD", "EUR", "GBP"]},
            }
        ),
    ),
    (
        "Describe a matrix.",
        obj(
            {
                "rows": {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 2,
                    "items": {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 2,
                        "items": {"type": "integer", "minimum": 0, "maximum": 9},
                    },
                }
            }
        ),
    ),
    (
        "Give a point.",
        {
            "type": "array",
            "prefixItems": [
                {"type": "number", "minimum": -90, "maximum": 90},
                {"type": "number", "minimum": -180, "maximum": 180},
            ],
            "items": False,
        },
    ),
    (
        "Give a list of tags.",
        {
            "type": "array",
            "items": {"type": "string", "pattern": "^[a-z]{2,10}$"},
            "minItems": 1,
            "maxItems": 4,
        },
    ),
    ("Give a status.", {"enum": ["active", "inactive", "pending"]}),
    ("Give a yes or no answer.", {"type": "boolean"}),
    ("Give a number between 1 and 10.", {"type": "integer", "minimum": 1, "maximum": 10}),
    (
        "Describe a recipe.",
        obj(
            {
                "dish": NAME,
                "ingredients": {
                    "type": "array",
                    "minItems": 2,
                    "maxItems": 4,
                    "items": obj(
                        {"item": NAME, "grams": {"type": "integer", "minimum": 1, "maximum": 1000}}
                    ),
                },
                "vegetarian": {"type": "boolean"},
            }
        ),
    ),
    (
        "Describe a tree node.",
        {
            "$defs": {"leaf": obj({"value": {"type": "integer", "minimum": 0, "maximum": 99}})},
            **obj({"left": {"$ref": "#/$defs/leaf"}, "right": {"$ref": "#/$defs/leaf"}}),
        },
    ),
    (
        "Describe an event.",
        obj(
            {
                "title": TEXT,
                "date": {"type": "string", "format": "date"},
                "attendees": {"type": "integer", "minimum": 0, "maximum": 500},
                "tags": {"type": "array", "items": NAME, "maxItems": 2},
            },
            required=["title", "date"],
        ),
    ),
    (
        "Give a version.",
        obj({"version": {"type": "string", "pattern": r"^[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,3}$"}}),
    ),
    (
        "Give a setting.",
        obj({"key": {"const": "mode"}, "value": {"enum": ["fast", "slow", 1, None]}}),
    ),
]
