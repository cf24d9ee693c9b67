"""Entity types: attributes, operations, pydantic models as types, CREATE/UPDATE validation."""

from __future__ import annotations

import enum
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from petrel.management import Attribute, BadRequest, EntityType, Operation
from petrel.types import Array, Symbol, UInt


class Tls(BaseModel):
    cert_file: str
    key_file: str | None = None


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


class QueueModel(BaseModel):
    """A queue, as a config file declares it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    """The queue's name."""
    routing: Literal["anycast", "multicast"] = "anycast"
    max_messages: int | None = Field(default=None, ge=1)
    """At most this many messages."""
    ratio: float = 0.5
    durable: bool = True
    labels: list[str] = Field(default_factory=list, description="Free-form labels.")
    tls: Tls | None = None
    extra: dict[str, int] = Field(default_factory=dict)
    mode: Mode = Mode.SAFE
    dead_letter_address: str
    """Where dead letters go (no default: required)."""

    @model_validator(mode="after")
    def _check(self) -> QueueModel:
        if self.dead_letter_address == self.name:
            raise ValueError("a queue cannot be its own dead-letter address")
        return self


DEPTH = Attribute("depth", "integer", "Messages in the queue.")
PURGE = Operation("PURGE", "Remove every message.", reply="the number removed")


def queue_type(**options: object) -> EntityType:
    return EntityType.from_model(
        "test.queue",
        QueueModel,
        read_only=[DEPTH],
        operations=[PURGE],
        create_only=["routing"],
        **options,  # type: ignore[arg-type]
    )


# --- Attribute and Operation --------------------------------------------------------------


def test_attribute_names_and_types_are_checked() -> None:
    with pytest.raises(ValueError, match="snake_case"):
        Attribute("maxMessages", "integer")
    with pytest.raises(ValueError, match="unknown type 'int'"):
        Attribute("max_messages", "int")  # type: ignore[arg-type]
    assert Attribute("x", "string", required=True).create
    assert Attribute("x", "string").read_only
    assert not Attribute("x", "string", create=True).read_only


@pytest.mark.parametrize(
    ("kind", "given", "expected"),
    [
        ("string", Symbol("sym"), "sym"),
        ("integer", 5, 5),
        ("integer", UInt(7), 7),
        ("integer", "42", 42),
        ("integer", "-3", -3),
        ("float", 2, 2.0),
        ("float", "2.5", 2.5),
        ("boolean", True, True),
        ("boolean", "false", False),
        ("list", ("a", "b"), ["a", "b"]),
        ("list", Array(str, ["a"]), ["a"]),
        ("list", '["a", 1]', ["a", 1]),
        ("map", {"a": 1}, {"a": 1}),
        ("map", '{"a": 1}', {"a": 1}),
    ],
)
def test_values_are_converted_as_the_draft_says(kind: str, given: object, expected: object) -> None:
    converted = Attribute("x", kind).convert(given)  # type: ignore[arg-type]
    assert converted == expected
    assert type(converted) is type(expected)


@pytest.mark.parametrize(
    ("kind", "given"),
    [
        ("string", 5),
        ("integer", True),
        ("integer", 1.5),
        ("integer", "1.5"),
        ("integer", "ten"),
        ("float", "NaN"),
        ("float", False),
        ("boolean", 1),
        ("boolean", "yes"),
        ("list", "a,b"),
        ("list", {"a": 1}),
        ("map", [1]),
        ("map", "[1]"),
    ],
)
def test_values_of_the_wrong_type_name_the_attribute_and_the_type(kind: str, given: object) -> None:
    with pytest.raises(BadRequest, match=f"attribute 'x' expects an? {kind}, not ") as caught:
        Attribute("x", kind).convert(given)  # type: ignore[arg-type]
    assert caught.value.status == 400


def test_null_and_choices() -> None:
    assert Attribute("x", "string").convert(None) is None
    with pytest.raises(BadRequest, match="'x' cannot be null"):
        Attribute("x", "string", nullable=False).convert(None)
    choice = Attribute("x", "string", choices=("a", "b"))
    assert choice.convert("b") == "b"
    with pytest.raises(BadRequest, match="'x' must be one of 'a', 'b', not 'c'"):
        choice.convert("c")


def test_operations() -> None:
    move = Operation(
        "MOVE",
        arguments=[Attribute("to", "string", required=True), Attribute("limit", "integer")],
    )
    assert move.argument_names == ["to", "limit"]
    assert move.parse_arguments({"to": "q2", "limit": "10", "other": 1}) == {
        "to": "q2",
        "limit": 10,
    }
    with pytest.raises(BadRequest, match="MOVE needs the argument 'to'"):
        move.parse_arguments({"limit": 1})
    with pytest.raises(BadRequest, match="attribute 'limit' expects an integer"):
        move.parse_arguments({"to": "q2", "limit": "many"})
    with pytest.raises(ValueError, match="standard operation"):
        Operation("READ")
    with pytest.raises(ValueError, match="upper case"):
        Operation("purge")
    with pytest.raises(ValueError, match="'name' is reserved"):
        Operation("X", arguments=[Attribute("name", "string")])


# --- EntityType ---------------------------------------------------------------------------


def test_every_type_starts_with_name_identity_and_type() -> None:
    connection = EntityType("test.connection", "A client connection.", [DEPTH], allows=["DELETE"])
    assert connection.attribute_names == ["name", "identity", "type", "depth"]
    assert connection.allows == ("DELETE",)
    assert connection.supports("DELETE")
    assert not connection.supports("READ")
    assert EntityType("test.thing").allows == ("READ",)
    identity = connection.attribute("identity")
    assert identity is not None and identity.read_only
    with pytest.raises(ValueError, match="'name' is a standard attribute"):
        EntityType("test.bad", attributes=[Attribute("name", "string")])
    with pytest.raises(ValueError, match="declared twice"):
        EntityType("test.bad", attributes=[DEPTH, DEPTH])
    with pytest.raises(ValueError, match="only"):
        EntityType("test.bad", allows=["QUERY"])


def test_from_model_derives_attributes_from_the_fields() -> None:
    queue = queue_type()
    assert queue.description == "A queue, as a config file declares it."
    assert queue.attribute_names == [
        "name",
        "identity",
        "type",
        "routing",
        "max_messages",
        "ratio",
        "durable",
        "labels",
        "tls",
        "extra",
        "mode",
        "dead_letter_address",
        "depth",
    ]
    kinds = {a.name: a.type for a in queue.attributes}
    assert kinds["routing"] == "string"
    assert kinds["max_messages"] == "integer"
    assert kinds["ratio"] == "float"
    assert kinds["durable"] == "boolean"
    assert kinds["labels"] == "list"
    assert kinds["tls"] == "map"
    assert kinds["extra"] == "map"
    assert kinds["mode"] == "string"

    def attribute(name: str) -> Attribute:
        found = queue.attribute(name)
        assert found is not None
        return found

    assert attribute("name").description == "The queue's name."
    assert attribute("max_messages").description == "At most this many messages."
    assert attribute("labels").description == "Free-form labels."
    assert attribute("routing").choices == ("anycast", "multicast")
    assert attribute("mode").choices == ("fast", "safe")
    assert attribute("mode").default == "safe"
    assert attribute("labels").default == []
    assert attribute("routing").default == "anycast"
    assert attribute("max_messages").nullable
    assert not attribute("routing").nullable
    assert attribute("dead_letter_address").required
    assert not attribute("ratio").required
    assert attribute("routing").create and not attribute("routing").writable
    assert attribute("ratio").create and attribute("ratio").writable
    assert attribute("depth").read_only
    assert queue.operation_names == ["CREATE", "READ", "UPDATE", "DELETE", "PURGE"]
    assert queue.operation("PURGE") is PURGE
    assert queue.describe()["attributes"][4]["name"] == "max_messages"


def test_from_model_options() -> None:
    class UserModel(BaseModel):
        name: str
        password: str
        token: SecretStr | None = None
        note: str = ""

    user = EntityType.from_model("test.user", UserModel, secret=["password"], exclude=["note"])
    assert user.attribute_names == ["name", "identity", "type", "password", "token"]
    password, token = user.attribute("password"), user.attribute("token")
    assert password is not None and password.secret
    assert token is not None and token.secret  # SecretStr is secret by itself
    with pytest.raises(ValueError, match="has no field 'pasword'"):
        EntityType.from_model("test.user", UserModel, secret=["pasword"])
    with pytest.raises(ValueError, match="required: cannot exclude it"):
        EntityType.from_model("test.user", UserModel, exclude=["password"])

    class Odd(BaseModel):
        when: int | str = 0

    with pytest.raises(TypeError, match=r"Odd.when: cannot tell the management type"):
        EntityType.from_model("test.odd", Odd)
    odd = EntityType.from_model("test.odd", Odd, types={"when": "string"})
    assert odd.attribute("when") == Attribute(
        "when", "string", create=True, writable=True, default=0, nullable=False
    )


def test_the_broker_config_models_convert() -> None:
    from petrel.server import config

    for model in (
        config.QueueSettings,
        config.AddressSettings,
        config.ListenerSettings,
        config.UserSettings,
    ):
        entity_type = EntityType.from_model(f"petrel.{model.__name__.lower()}", model)
        assert entity_type.attribute_names[:3] == ["name", "identity", "type"]
        assert entity_type.model is model


# --- validation ---------------------------------------------------------------------------


def test_validate_create_converts_and_checks() -> None:
    queue = queue_type()
    values = queue.validate_create(
        {"max_messages": "100", "durable": "false", "dead_letter_address": "dlq"}, name="orders"
    )
    assert values == {"max_messages": 100, "durable": False, "dead_letter_address": "dlq"}


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        (
            {"dead_letter_address": "dlq", "colour": "red"},
            "unknown attribute 'colour' for test.queue",
        ),
        (
            {"dead_letter_address": "dlq", "max_messages": "many"},
            "'max_messages' expects an integer",
        ),
        ({"dead_letter_address": "dlq", "depth": 3}, "attribute 'depth' cannot be set by CREATE"),
        ({"dead_letter_address": "dlq", "identity": "x"}, "'identity' cannot be set by CREATE"),
        ({"dead_letter_address": "dlq", "routing": "broadcast"}, "'routing' must be one of"),
        ({"dead_letter_address": "dlq", "routing": None}, "'routing' cannot be null"),
        ({"max_messages": 5}, "missing required attribute 'dead_letter_address'"),
        # What only the model knows: its constraints and validators.
        ({"dead_letter_address": "dlq", "max_messages": 0}, "'max_messages': Input should be"),
        ({"dead_letter_address": "orders"}, "cannot be its own dead-letter address"),
        ({"dead_letter_address": "dlq", "tls": {"key_file": "k"}}, "'tls.cert_file': Field req"),
        ({"dead_letter_address": "dlq", 5: 1}, "attribute names are strings"),
    ],
)
def test_validate_create_rejects(attributes: dict[object, object], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        queue_type().validate_create(attributes, name="orders")  # type: ignore[arg-type]


def test_validate_create_lists_every_problem() -> None:
    with pytest.raises(BadRequest) as caught:
        queue_type().validate_create({"colour": 1, "ratio": "x"}, name="q")
    problems = caught.value.description.split("; ")
    assert problems == [
        "unknown attribute 'colour' for test.queue",
        "attribute 'ratio' expects a float, not str 'x'",
        "missing required attribute 'dead_letter_address'",
    ]


def test_validate_update() -> None:
    queue = queue_type()
    current = {
        "name": "orders",
        "identity": "q-1",
        "type": "test.queue",
        "dead_letter_address": "dlq",
        "depth": 4,
    }
    assert queue.validate_update({"ratio": "0.25"}, current=current) == {"ratio": 0.25}
    with pytest.raises(BadRequest, match="attribute 'routing' cannot be set by UPDATE"):
        queue.validate_update({"routing": "multicast"}, current=current)
    with pytest.raises(BadRequest, match="attribute 'depth' cannot be set by UPDATE"):
        queue.validate_update({"depth": 0}, current=current)
    with pytest.raises(BadRequest, match="'max_messages': Input should be greater"):
        queue.validate_update({"max_messages": 0}, current=current)
    # The model sees the entity as it would be: this change makes it invalid.
    with pytest.raises(BadRequest, match="cannot be its own dead-letter address"):
        queue.validate_update({"dead_letter_address": "orders"}, current=current)


def test_validate_update_does_not_blame_the_client_for_secrets_not_read_back() -> None:
    class UserModel(BaseModel):
        name: str
        password: str
        limit: int = Field(default=1, ge=1)

    user = EntityType.from_model("test.user", UserModel, secret=["password"])
    current = {"name": "ann", "identity": "u-1", "limit": 1}  # no password: it is secret
    assert user.validate_update({"limit": 2}, current=current) == {"limit": 2}
    with pytest.raises(BadRequest, match="'limit': Input should be greater"):
        user.validate_update({"limit": 0}, current=current)


def test_to_model() -> None:
    queue = queue_type()
    settings = queue.to_model("orders", {"dead_letter_address": "dlq", "depth": 5})
    assert isinstance(settings, QueueModel)
    assert settings.name == "orders"
    assert settings.dead_letter_address == "dlq"
    with pytest.raises(BadRequest, match="dead_letter_address"):
        queue.to_model("orders", {})
    with pytest.raises(TypeError, match="has no model"):
        EntityType("test.plain").to_model("x", {})
