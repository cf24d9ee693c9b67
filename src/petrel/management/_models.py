"""Pydantic models as entity types: fields to attributes, and validation by the model.

Private to :mod:`petrel.management`; :meth:`EntityType.from_model` and
:meth:`EntityType.to_model` are the public face.
"""

from __future__ import annotations

import ast
import collections.abc
import enum
import inspect
import itertools
import textwrap
import types
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic_core import to_jsonable_python

from .errors import BadRequest
from .schema import Attribute, AttributeType

__all__ = ["build_model", "model_attributes"]


def model_attributes(
    model: type[BaseModel],
    *,
    create_only: Collection[str],
    secret: Collection[str],
    exclude: Collection[str],
    types: Mapping[str, AttributeType],
) -> tuple[list[Attribute], str, str]:
    """``model`` 's fields as attributes, the ``name`` field's description, the model's docstring.

    Raises ``ValueError`` for options naming fields the model lacks or
    excluding a required field, ``TypeError`` for a field whose annotation
    maps onto no attribute type (unless ``types`` names it).
    """
    fields = model.model_fields
    named = set(create_only) | set(secret) | set(exclude) | set(types)
    unknown = sorted(named - set(fields))
    if unknown:
        raise ValueError(f"{model.__name__} has no field {unknown[0]!r}")
    docs = field_docstrings(model)
    attributes: list[Attribute] = []
    name_description = ""
    for field_name, info in fields.items():
        description = info.description or docs.get(field_name, "")
        if field_name == "name":
            name_description = description
            continue
        required = info.is_required()
        if field_name in exclude:
            if required:
                raise ValueError(f"{model.__name__}.{field_name} is required: cannot exclude it")
            continue
        annotation, nullable = _unwrap(info.annotation)
        if field_name in types:
            kind, choices = types[field_name], ()
        else:
            kind, choices = _attribute_type(model, field_name, annotation)
        attributes.append(
            Attribute(
                field_name,
                kind,
                description,
                required=required,
                create=True,
                writable=field_name not in create_only,
                default=None if required else _default(info),
                nullable=nullable,
                choices=choices,
                secret=field_name in secret or _is_secret(annotation),
            )
        )
    doc = inspect.cleandoc(model.__doc__) if model.__doc__ else ""
    return attributes, name_description, doc


def build_model(
    model: type[BaseModel],
    name: str | None,
    values: Mapping[str, Any],
    *,
    changed: Mapping[str, Any] | None,
) -> BaseModel:
    """``model`` validated from ``values`` (those that are fields) and ``name``.

    Raises :class:`~petrel.management.errors.BadRequest` with every problem
    the model reports, each naming its attribute.  With ``changed`` (an
    UPDATE), a field missing from ``values`` that the update did not touch
    is not the client's fault (a secret the provider does not read back):
    such complaints are dropped, and the values are then returned unchecked.
    """
    data = {key: value for key, value in values.items() if key in model.model_fields}
    if name is not None and "name" in model.model_fields:
        data["name"] = name
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            location = error["loc"]
            untouched = changed is not None and location and location[0] not in changed
            if untouched and error["type"] == "missing":
                continue
            message = error["msg"].removeprefix("Value error, ")
            where = ".".join(str(part) for part in location)
            problems.append(f"attribute {where!r}: {message}" if where else message)
        if problems:
            raise BadRequest("; ".join(problems)) from None
    return model.model_construct(**data)


def field_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """The string literal under each field of ``model`` and its base models (by source).

    Empty for models whose source cannot be read (defined in a REPL, say).
    """
    docs: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        tree = ast.parse(source)
        if not tree.body or not isinstance(tree.body[0], ast.ClassDef):
            continue
        body = tree.body[0].body
        for statement, following in itertools.pairwise(body):
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[statement.target.id] = inspect.cleandoc(following.value.value)
    return docs


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``Annotated`` and ``| None``; whether it allowed ``None``."""
    nullable = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union or origin is types.UnionType:
            args = get_args(annotation)
            rest = tuple(arg for arg in args if arg is not type(None))
            nullable = nullable or len(rest) != len(args)
            if len(rest) != 1:
                return annotation, nullable
            annotation = rest[0]
        else:
            return annotation, nullable


def _kind_of_values(values: tuple[Any, ...]) -> AttributeType | None:
    if values and all(isinstance(value, bool) for value in values):
        return "boolean"
    if values and all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        return "integer"
    if values and all(isinstance(value, str) for value in values):
        return "string"
    return None


def _attribute_type(
    model: type[BaseModel], field_name: str, annotation: Any
) -> tuple[AttributeType, tuple[Any, ...]]:
    origin = get_origin(annotation)
    kind: AttributeType | None = None
    choices: tuple[Any, ...] = ()
    if origin is Literal:
        choices = get_args(annotation)
        kind = _kind_of_values(choices)
    elif isinstance(annotation, type):
        kind, choices = _class_type(annotation)
    elif isinstance(origin, type):
        if issubclass(origin, collections.abc.Mapping):
            kind = "map"
        elif issubclass(origin, list | tuple | collections.abc.Set | collections.abc.Sequence):
            kind = "list"
    if kind is None:
        raise TypeError(
            f"{model.__name__}.{field_name}: cannot tell the management type of {annotation!r}; "
            "name it in types={...}"
        )
    return kind, choices


def _class_type(annotation: type) -> tuple[AttributeType | None, tuple[Any, ...]]:
    if issubclass(annotation, enum.Enum):
        values = tuple(member.value for member in annotation)
        return _kind_of_values(values), values
    simple: list[tuple[type, AttributeType]] = [
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        (SecretStr, "string"),
        (BaseModel, "map"),
        (collections.abc.Mapping, "map"),
        (list, "list"),
        (tuple, "list"),
        (collections.abc.Set, "list"),
    ]
    for base, kind in simple:
        if issubclass(annotation, base):
            return kind, ()
    return None, ()


def _is_secret(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, SecretStr | SecretBytes)


def _default(info: Any) -> Any:
    try:
        value = info.get_default(call_default_factory=True)
    except TypeError:  # a factory that wants the other fields' values
        return None
    return to_jsonable_python(value)
