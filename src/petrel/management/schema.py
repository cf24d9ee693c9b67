"""Entity types: what can be managed, which attributes it has, what may be done to it.

An :class:`EntityType` names a kind of manageable entity (``petrel.queue``),
lists its :class:`Attribute` s and the operations it allows, and validates
the attribute maps of CREATE and UPDATE requests.  Config-backed types are
derived from the pydantic model that also reads the config file
(:meth:`EntityType.from_model`), so the file and management are one model::

    QUEUE = EntityType.from_model(
        "petrel.queue",
        QueueSettings,
        read_only=[Attribute("depth", "integer", "Messages in the queue.")],
        operations=[Operation("PURGE", "Remove every message.")],
    )

Every entity type has the standard attributes ``name`` (given at CREATE,
never changed), ``identity`` (assigned by the server, stable for the
entity's life) and ``type`` (the type's name), first, in that order.

Values arriving in a request are checked against the attribute's type and
converted as the draft asks (section 3.3.1.1): a string holding a JSON number,
``true``/``false``, array or object becomes an integer, float, boolean, list
or map where the attribute wants one, so that tools which send every value as
a string (``qdmanage``-style command lines) work.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

from ._values import ARTICLE, INVALID, convert_value, describe_value
from .errors import BadRequest
from .protocol import ENTITY_OPERATIONS, NODE_OPERATIONS

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "ATTRIBUTE_TYPES",
    "STANDARD_ATTRIBUTES",
    "Attribute",
    "AttributeType",
    "EntityType",
    "Operation",
]

#: The value types an attribute may have.
AttributeType = Literal["string", "integer", "boolean", "float", "map", "list"]
ATTRIBUTE_TYPES: Final[tuple[AttributeType, ...]] = get_args(AttributeType)

_ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_OPERATION_NAME = re.compile(r"[A-Z][A-Z0-9_-]*\Z")
# Application properties an operation argument may not be called.
_RESERVED_ARGUMENTS = frozenset({"operation", "type", "name", "identity", "locales"})


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of an entity type.

    ``name`` is snake_case.  ``required`` attributes must be given at
    CREATE (and so are ``create`` ones); ``create`` ones may be; ``writable`` ones may be changed by
    UPDATE; an attribute with neither is read-only (a counter such as
    ``depth``).  ``default`` is the value an entity gets when CREATE does not
    give one (documentation: the provider applies it).  ``nullable`` says
    whether null is a valid value (null means "no value", overriding any
    default).  ``choices``, when not empty, lists the only valid values.
    ``secret`` attributes (passwords) may be written but are never read
    back: READ leaves them out and QUERY gives null for them.
    """

    name: str
    type: AttributeType
    description: str = ""
    _: KW_ONLY
    required: bool = False
    create: bool = False
    writable: bool = False
    default: Any = None
    nullable: bool = True
    choices: tuple[Any, ...] = ()
    secret: bool = False

    def __post_init__(self) -> None:
        if not _ATTRIBUTE_NAME.match(self.name):
            raise ValueError(f"attribute name {self.name!r} is not snake_case")
        if self.type not in ATTRIBUTE_TYPES:
            raise ValueError(
                f"attribute {self.name!r}: unknown type {self.type!r} "
                f"(one of {', '.join(ATTRIBUTE_TYPES)})"
            )
        if self.required:
            object.__setattr__(self, "create", True)
        object.__setattr__(self, "choices", tuple(self.choices))

    @property
    def read_only(self) -> bool:
        """Whether no request may set it (neither CREATE nor UPDATE)."""
        return not (self.create or self.writable)

    def convert(self, value: Any) -> Any:
        """``value`` checked against this attribute and converted to its plain Python type.

        Raises :class:`~petrel.management.errors.BadRequest` naming the
        attribute and the type it expects.
        """
        if value is None:
            if self.nullable:
                return None
            raise BadRequest(f"attribute {self.name!r} cannot be null")
        converted = convert_value(self.type, value)
        if converted is INVALID:
            raise BadRequest(
                f"attribute {self.name!r} expects {ARTICLE[self.type]} {self.type}, "
                f"not {describe_value(value)}"
            )
        if self.choices and converted not in self.choices:
            allowed = ", ".join(repr(choice) for choice in self.choices)
            raise BadRequest(f"attribute {self.name!r} must be one of {allowed}, not {value!r}")
        return converted

    def describe(self) -> dict[str, Any]:
        """The attribute as a map of plain values (for documentation and tools)."""
        description: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "required": self.required,
            "create": self.create,
            "writable": self.writable,
            "default": self.default,
            "nullable": self.nullable,
        }
        if self.choices:
            description["choices"] = list(self.choices)
        if self.secret:
            description["secret"] = True
        return description


@dataclass(frozen=True, slots=True)
class Operation:
    """An operation an entity type defines besides CREATE/READ/UPDATE/DELETE (``PURGE``).

    ``arguments`` are read from the request's application-properties (as the
    draft's GET-OPERATIONS describes them), checked and converted like
    attributes (``required`` arguments must be present).  ``body`` and
    ``reply`` say in words what the request and reply bodies hold.
    ``entity`` says whether the operation acts on one entity (it then needs a
    ``name`` or ``identity``) or on the type as a whole.
    """

    name: str
    description: str = ""
    _: KW_ONLY
    arguments: Sequence[Attribute] = ()
    body: str = ""
    reply: str = ""
    entity: bool = True

    def __post_init__(self) -> None:
        if not _OPERATION_NAME.match(self.name):
            raise ValueError(f"operation name {self.name!r} is not upper case (PURGE, GET-LOG)")
        if self.name in ENTITY_OPERATIONS or self.name in NODE_OPERATIONS:
            raise ValueError(f"{self.name} is a standard operation")
        object.__setattr__(self, "arguments", tuple(self.arguments))
        names = [argument.name for argument in self.arguments]
        clashes = sorted(set(names) & _RESERVED_ARGUMENTS)
        if clashes:
            raise ValueError(f"operation {self.name}: argument {clashes[0]!r} is reserved")
        if len(set(names)) != len(names):
            raise ValueError(f"operation {self.name}: an argument is declared twice")

    @property
    def argument_names(self) -> list[str]:
        """The names of its arguments, in declared order."""
        return [argument.name for argument in self.arguments]

    def parse_arguments(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """The declared arguments found in ``properties``, converted.

        Other application-properties are ignored (the draft says a property
        that is not recognised MUST be ignored).  Raises
        :class:`~petrel.management.errors.BadRequest` for a missing required
        argument or a value of the wrong type.
        """
        values: dict[str, Any] = {}
        for argument in self.arguments:
            if argument.name in properties:
                values[argument.name] = argument.convert(properties[argument.name])
            elif argument.required:
                raise BadRequest(f"{self.name} needs the argument {argument.name!r}")
        return values

    def describe(self) -> dict[str, Any]:
        """The operation as a map of plain values (for documentation and tools)."""
        return {
            "name": self.name,
            "description": self.description,
            "arguments": [argument.describe() for argument in self.arguments],
            "body": self.body,
            "reply": self.reply,
            "entity": self.entity,
        }


def _standard_attributes(type_name: str, name_description: str) -> tuple[Attribute, ...]:
    return (
        Attribute(
            "name",
            "string",
            name_description or "The entity's name, unique within its type.",
            required=True,
            create=True,
            nullable=False,
        ),
        Attribute(
            "identity",
            "string",
            "A stable id the server assigns, unique within the type.",
            nullable=False,
        ),
        Attribute("type", "string", "The entity type.", default=type_name, nullable=False),
    )


#: The attributes every entity type has, first, in this order.
STANDARD_ATTRIBUTES: Final = ("name", "identity", "type")


@dataclass(frozen=True, slots=True)
class EntityType:
    """A kind of manageable entity.

    ``name`` is fully qualified (``petrel.queue``).  ``attributes`` are the
    type's own; the standard ``name``, ``identity`` and ``type`` are put in
    front of them (declaring one of those is an error).  ``allows`` lists
    which of CREATE, READ, UPDATE and DELETE the type supports (QUERY always
    works); ``operations`` are the type's own operations.  ``extends`` names
    the types this one extends, as GET-TYPES reports them (a QUERY for a
    base type includes its extensions).  ``model`` is the pydantic model
    behind a config-backed type (see :meth:`from_model`): CREATE and UPDATE
    are then also validated by it.
    """

    name: str
    description: str = ""
    attributes: Sequence[Attribute] = ()
    _: KW_ONLY
    operations: Sequence[Operation] = ()
    allows: Collection[str] = ("READ",)
    extends: Sequence[str] = ()
    model: type[BaseModel] | None = None
    name_description: str = ""
    _by_name: dict[str, Attribute] = field(init=False, repr=False, compare=False)
    _operations: dict[str, Operation] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip():
            raise ValueError(f"bad entity type name {self.name!r}")
        own = tuple(self.attributes)
        for attribute in own:
            if attribute.name in STANDARD_ATTRIBUTES:
                raise ValueError(f"{self.name}: {attribute.name!r} is a standard attribute")
        attributes = _standard_attributes(self.name, self.name_description) + own
        by_name = {attribute.name: attribute for attribute in attributes}
        if len(by_name) != len(attributes):
            raise ValueError(f"{self.name}: an attribute is declared twice")
        allows = tuple(op for op in ENTITY_OPERATIONS if op in set(self.allows))
        unknown = set(self.allows) - set(ENTITY_OPERATIONS)
        if unknown:
            raise ValueError(f"{self.name}: allows {sorted(unknown)}; only {ENTITY_OPERATIONS}")
        operations = {operation.name: operation for operation in self.operations}
        if len(operations) != len(tuple(self.operations)):
            raise ValueError(f"{self.name}: an operation is declared twice")
        object.__setattr__(self, "attributes", attributes)
        object.__setattr__(self, "allows", allows)
        object.__setattr__(self, "operations", tuple(self.operations))
        object.__setattr__(self, "extends", tuple(self.extends))
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_operations", operations)

    @classmethod
    def from_model(
        cls,
        name: str,
        model: type[BaseModel],
        *,
        description: str | None = None,
        read_only: Sequence[Attribute] = (),
        operations: Sequence[Operation] = (),
        allows: Collection[str] = ENTITY_OPERATIONS,
        create_only: Collection[str] = (),
        secret: Collection[str] = (),
        exclude: Collection[str] = (),
        types: Mapping[str, AttributeType] | None = None,
        extends: Sequence[str] = (),
    ) -> EntityType:
        """An entity type whose configurable attributes are ``model`` 's fields.

        Each field becomes an attribute that may be set at CREATE, with its
        type from the annotation (``X | None`` makes it nullable, a
        ``Literal`` gives ``choices``, a nested model is a ``map``), its
        default, and its description from ``Field(description=...)`` or the
        string literal under the field (the attribute docstring).  A field
        without a default is ``required``.  The model's ``name`` field, if
        any, is the standard ``name`` attribute.

        ``create_only`` fields cannot be changed by UPDATE; ``secret`` ones
        are never read back; ``exclude`` ones are not managed at all;
        ``types`` overrides the type of fields whose annotation has no
        obvious one (raises ``TypeError`` naming such a field otherwise).
        ``read_only`` adds runtime attributes (counters) after the fields.
        ``description`` defaults to the model's docstring.
        """
        from ._models import model_attributes

        fields, name_description, model_doc = model_attributes(
            model,
            create_only=create_only,
            secret=secret,
            exclude=exclude,
            types=types or {},
        )
        return cls(
            name,
            model_doc if description is None else description,
            [*fields, *read_only],
            operations=operations,
            allows=allows,
            extends=extends,
            model=model,
            name_description=name_description,
        )

    # --- looking things up --------------------------------------------------------------

    @property
    def attribute_names(self) -> list[str]:
        """Every attribute's name, in order (the standard three first)."""
        return list(self._by_name)

    def attribute(self, name: str) -> Attribute | None:
        """The attribute called ``name``, or ``None``."""
        return self._by_name.get(name)

    def operation(self, name: str) -> Operation | None:
        """The type's own operation called ``name`` (upper case), or ``None``."""
        return self._operations.get(name)

    def supports(self, operation: str) -> bool:
        """Whether the type supports ``operation`` (a standard one it allows, or its own)."""
        return operation in self.allows or operation in self._operations

    @property
    def operation_names(self) -> list[str]:
        """The operations the type supports: the standard ones it allows, then its own."""
        return [*self.allows, *self._operations]

    def describe(self) -> dict[str, Any]:
        """The type as a map of plain values (for documentation and tools)."""
        return {
            "name": self.name,
            "description": self.description,
            "extends": list(self.extends),
            "allows": list(self.allows),
            "attributes": [attribute.describe() for attribute in self.attributes],
            "operations": [operation.describe() for operation in self.operations],
        }

    # --- validating requests ------------------------------------------------------------

    def validate_create(
        self, attributes: Mapping[str, Any], *, name: str | None = None
    ) -> dict[str, Any]:
        """The attributes of a CREATE, checked and converted.

        ``attributes`` excludes the standard ones (the agent takes ``name``
        and ``type`` from the request).  Raises
        :class:`~petrel.management.errors.BadRequest` listing every problem:
        an unknown attribute, one that cannot be set at CREATE, a value of
        the wrong type, a missing required attribute; then, for a
        model-backed type, what the model rejects (``name`` is passed to it).
        """
        problems: list[str] = []
        values = self._convert(attributes, problems, lambda attribute: attribute.create, "CREATE")
        problems.extend(
            f"missing required attribute {attribute.name!r}"
            for attribute in self.attributes
            if attribute.required
            and attribute.name not in STANDARD_ATTRIBUTES
            and attribute.name not in attributes
        )
        if problems:
            raise BadRequest("; ".join(problems))
        if self.model is not None:
            self._check_model(name, values, changed=None)
        return values

    def validate_update(
        self, changes: Mapping[str, Any], *, current: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The attributes of an UPDATE, checked and converted.

        ``changes`` excludes the standard attributes.  Raises
        :class:`~petrel.management.errors.BadRequest` listing every problem:
        an unknown attribute, one that is not writable, a value of the wrong
        type; then, for a model-backed type, what the model rejects about
        ``current`` (the entity as READ gives it) with ``changes`` applied.
        """
        problems: list[str] = []
        values = self._convert(changes, problems, lambda attribute: attribute.writable, "UPDATE")
        if problems:
            raise BadRequest("; ".join(problems))
        if self.model is not None and current is not None:
            merged = {
                key: value
                for key, value in current.items()
                if key not in STANDARD_ATTRIBUTES and key in self.model.model_fields
            }
            merged.update(values)
            name = current.get("name")
            self._check_model(name if isinstance(name, str) else None, merged, changed=values)
        return values

    def to_model(self, name: str | None, attributes: Mapping[str, Any]) -> BaseModel:
        """The model-backed type's settings object for an entity (``QueueSettings(...)``).

        ``attributes`` are values as :meth:`validate_create` returns them (or
        an entity's current ones); those that are not model fields are left
        out.  Raises ``TypeError`` for a type without a model and
        :class:`~petrel.management.errors.BadRequest` with the model's
        complaints, each naming its attribute.
        """
        from ._models import build_model

        if self.model is None:
            raise TypeError(f"{self.name} has no model")
        return build_model(self.model, name, attributes, changed=None)

    def _convert(
        self,
        attributes: Mapping[str, Any],
        problems: list[str],
        settable: Callable[[Attribute], bool],
        operation: str,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, value in attributes.items():
            if not isinstance(key, str):
                problems.append(f"attribute names are strings, not {describe_value(key)}")
                continue
            attribute = self._by_name.get(key)
            if attribute is None:
                problems.append(f"unknown attribute {key!r} for {self.name}")
            elif key in STANDARD_ATTRIBUTES or not settable(attribute):
                problems.append(f"attribute {key!r} cannot be set by {operation}")
            else:
                try:
                    values[key] = attribute.convert(value)
                except BadRequest as exc:
                    problems.append(exc.description)
        return values

    def _check_model(
        self, name: str | None, values: Mapping[str, Any], *, changed: Mapping[str, Any] | None
    ) -> None:
        from ._models import build_model

        assert self.model is not None
        build_model(self.model, name, values, changed=changed)
