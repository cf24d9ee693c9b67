"""Random sequences of store operations against a model: what is read back matches."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.postgres import fresh_schema

from .helpers import StoreFactory, msg, queue

QUEUES = ("a", "b", "c")
Key = tuple[str, int]

names = st.sampled_from(QUEUES)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("save"), names, st.integers(0, 3)),
        st.tuples(st.just("delete_queue"), names),
        st.tuples(st.just("add"), names, st.integers(0, 9), st.binary(max_size=300)),
        st.tuples(st.just("page_out"), names, st.binary(min_size=1, max_size=300)),
        st.tuples(st.just("remove"), st.integers(0, 1000)),
        st.tuples(st.just("set_delivery_count"), st.integers(0, 1000), st.integers(1, 5)),
        st.tuples(st.just("move"), st.integers(0, 1000), names),
        st.tuples(st.just("turn")),
        st.tuples(st.just("commit")),
        st.tuples(st.just("check"), names),
    ),
    max_size=60,
)


async def run(factory: StoreFactory, ops: list[tuple[object, ...]]) -> None:
    saved: dict[str, int] = {}
    durable: dict[Key, tuple[int, int, bytes]] = {}  # key -> priority, delivery count, data
    paged: dict[Key, bytes] = {}
    next_seq = dict.fromkeys(QUEUES, 1)

    def new_key(name: str) -> Key:
        next_seq[name] += 1
        return name, next_seq[name] - 1

    def pick(index: object, among: dict[Key, object]) -> Key | None:
        keys = sorted(among)
        return keys[int(str(index)) % len(keys)] if keys else None

    store = await factory.open()
    for op in ops:
        match op:
            case ("save", str(name), int(version)):
                store.save_queue(queue(name, version=version))
                saved[name] = version
            case ("delete_queue", str(name)):
                store.delete_queue(name)
                saved.pop(name, None)
                for table in (durable, paged):
                    for key in [key for key in table if key[0] == name]:
                        del table[key]
            case ("add", str(name), int(priority), bytes(data)):
                key = new_key(name)
                store.add(msg(*key, data, priority=priority))
                durable[key] = (priority, 0, data)
            case ("page_out", str(name), bytes(data)):
                key = new_key(name)
                store.page_out(msg(*key, data))
                paged[key] = data
            case ("remove", index):
                picked = pick(index, {**durable, **paged})
                if picked is not None:
                    store.remove(*picked)
                    durable.pop(picked, None)
                    paged.pop(picked, None)
            case ("set_delivery_count", index, int(count)):
                picked = pick(index, dict(durable))
                if picked is not None:
                    store.set_delivery_count(*picked, count)
                    priority, _, data = durable[picked]
                    durable[picked] = (priority, count, data)
            case ("move", index, str(name)):
                picked = pick(index, dict(durable))
                if picked is not None:
                    to = new_key(name)
                    priority, count, data = durable.pop(picked)
                    store.move(*picked, msg(*to, data, priority=priority, delivery_count=count))
                    durable[to] = (priority, count, data)
            case ("turn",):
                await asyncio.sleep(0)
            case ("commit",):
                await store.commit()
            case ("check", str(name)):
                expected = {key[1]: value[2] for key, value in durable.items() if key[0] == name}
                expected |= {key[1]: data for key, data in paged.items() if key[0] == name}
                asked = [*expected, next_seq[name] + 5]
                assert await store.load_data(name, asked) == expected
    await store.close()

    contents = await factory.reopen(extra_queues=QUEUES)
    assert {name: record.settings["version"] for name, record in contents.queues.items()} == saved
    for name in QUEUES:
        recovered = [
            msg(*key, value[2], priority=value[0], delivery_count=value[1])
            for key, value in sorted(durable.items())
            if key[0] == name
        ]
        assert contents.messages[name] == recovered


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_sqlite_store_matches_model(ops: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        factory = StoreFactory("sqlite", str(Path(directory) / "data"), Path(directory))
        asyncio.run(run(factory, ops))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_postgres_store_matches_model(postgres_url: str, ops: list[tuple[object, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory, fresh_schema(postgres_url) as url:
        asyncio.run(run(StoreFactory("postgresql", url, Path(directory)), ops))
