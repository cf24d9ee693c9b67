"""One routing core at a time, fed control messages by hand.

The bodies here are written out as plain maps (not built with the core's own
message classes), so these tests pin the wire form as well as the behaviour.
Router "A" is the core under test; its links are keyed "to-B", "to-C", ...
"""

from __future__ import annotations

import copy
import itertools
import random
from typing import Any

import pytest

from petrel.errors import Condition
from petrel.router.routing import (
    PROTOCOL_VERSION,
    AddressesChanged,
    Event,
    NeighbourFound,
    NeighbourLost,
    NeighbourRefused,
    ProtocolError,
    RoutingCore,
    Timers,
    TopologyChanged,
)

TIMERS = Timers()


def msg(op: str, sender: str, instance: int = 1, /, **fields: Any) -> dict[str, Any]:
    return {"op": op, "pv": 1, "id": sender, "instance": instance, **fields}


def hello(origin: str, *seen: str, instance: int = 1) -> dict[str, Any]:
    return msg("HELLO", origin, instance, seen=list(seen))


def lsu(origin: str, ls_seq: int, links: dict[str, int], instance: int = 1) -> dict[str, Any]:
    return msg("LSU", origin, instance, ls_seq=ls_seq, links=links)


def ra(origin: str, ra_seq: int, ls_seq: int, mobile_seq: int, instance: int = 1) -> dict[str, Any]:
    return msg("RA", origin, instance, ra_seq=ra_seq, ls_seq=ls_seq, mobile_seq=mobile_seq)


def diff(
    origin: str, seq: int, add: list[str], remove: list[str], instance: int = 1
) -> dict[str, Any]:
    return {**msg("MAU", origin, instance, mobile_seq=seq, add=add), "del": remove}


def snapshot(origin: str, seq: int, exist: list[str], instance: int = 1) -> dict[str, Any]:
    return msg("MAU", origin, instance, mobile_seq=seq, exist=exist, part=0, parts=1)


def events(core: RoutingCore) -> list[Event]:
    out = []
    while (event := core.next_event()) is not None:
        out.append(event)
    return out


def sent(core: RoutingCore, op: str | None = None) -> list[tuple[Any, dict[str, Any]]]:
    return [(link, body) for link, body in core.take_messages() if op is None or body["op"] == op]


def router_a(*peers: str, cost: int = 10, now: float = 0.0) -> RoutingCore:
    """Core "A" with two-way neighbours ``peers``, its output and events drained."""
    core = RoutingCore("A", instance=1, now=now, timers=TIMERS)
    for peer in peers:
        core.link_up(f"to-{peer}", peer, cost, now)
        core.receive(f"to-{peer}", hello(peer, "A"), now)
        core.receive(f"to-{peer}", lsu(peer, 1, {"A": cost}), now)
    core.take_messages()
    events(core)
    return core


def behind_b(core: RoutingCore, *remote: str, now: float = 0.0) -> None:
    """Make ``remote`` routers reachable through neighbour B (a chain B - X - Y ...)."""
    chain = ["A", "B", *remote]
    for n, router in enumerate(chain[1:], start=1):
        links = {chain[n - 1]: 1}
        if n + 1 < len(chain):
            links[chain[n + 1]] = 1
        core.receive("to-B", lsu(router, 2, links), now)
    core.take_messages()
    events(core)


# -- refusals ------------------------------------------------------------------------------


def test_a_peer_with_our_own_id_is_refused() -> None:
    core = RoutingCore("A", instance=1, now=0.0)
    with pytest.raises(NeighbourRefused) as refused:
        core.link_up("L", "A", 1, 0.0)
    assert refused.value.reason == "duplicate router id: the peer is also called 'A'"
    assert str(refused.value) == refused.value.reason
    assert core.take_messages() == []
    core.link_down("L", 0.0)  # not known: nothing happens
    core.receive("L", hello("A"), 0.0)  # nor here
    assert core.take_messages() == [] and core.next_event() is None


def test_a_peer_speaking_a_newer_protocol_is_refused() -> None:
    core = RoutingCore("A", instance=1, now=0.0)
    with pytest.raises(NeighbourRefused) as refused:
        core.link_up("L", "B", 1, 0.0, protocol_version=PROTOCOL_VERSION + 1)
    assert refused.value.reason == "speaks protocol version 2; this router speaks 1"
    core.link_up("L", "B", 1, 0.0, protocol_version=PROTOCOL_VERSION)
    assert [body["op"] for _, body in core.take_messages()] == ["HELLO"]


def test_a_second_connection_to_one_peer_is_refused_until_the_first_closes() -> None:
    core = router_a("B")
    with pytest.raises(NeighbourRefused) as refused:
        core.link_up("again", "B", 1, 1.0)
    assert refused.value.reason == "already connected to 'B': a second connection is refused"
    assert core.neighbours() == {"B": "to-B"}
    core.link_down("to-B", 2.0)
    core.link_up("again", "B", 1, 2.0)
    assert [link for link, _ in core.take_messages()] == ["again"]


def test_local_misuse_is_a_value_error() -> None:
    core = router_a("B")
    with pytest.raises(ValueError, match="already up"):
        core.link_up("to-B", "C", 1, 0.0)
    with pytest.raises(ValueError, match="cost"):
        core.link_up("to-C", "C", 0, 0.0)
    with pytest.raises(ValueError, match="address"):
        core.add_address("", 0.0)
    with pytest.raises(ValueError, match="router id"):
        RoutingCore("x" * 256, instance=1, now=0.0)
    with pytest.raises(ValueError, match="hello_max_age"):
        Timers(hello_interval=2.0, hello_max_age=2.0)


# -- HELLO and neighbours --------------------------------------------------------------------


def test_a_neighbour_counts_only_once_its_hello_lists_us() -> None:
    core = RoutingCore("A", instance=1, now=0.0, timers=TIMERS)
    core.link_up("to-B", "B", 7, 0.0)
    assert sent(core) == [("to-B", hello("A"))]
    # B's first HELLO does not list A yet: heard, not two-way.  A answers at once.
    core.receive("to-B", hello("B"), 0.1)
    assert sent(core) == [("to-B", hello("A", "B"))]
    assert core.neighbours() == {} and core.next_hop("B") is None and events(core) == []
    core.receive("to-B", hello("B", "A"), 0.2)
    assert core.neighbours() == {"B": "to-B"}
    assert events(core) == [NeighbourFound("B")]
    # A's new link state goes out, then the database sync: A's own (empty) address set.
    assert sent(core) == [("to-B", lsu("A", 1, {"B": 7})), ("to-B", snapshot("A", 0, []))]
    # The edge counts once B's link state lists A too.
    assert core.next_hop("B") is None and core.reachable() == frozenset()
    core.receive("to-B", lsu("B", 1, {"A": 3}), 0.2)
    assert core.next_hop("B") == "to-B" and core.reachable() == {"B"}
    assert core.cost_to("B") == 7 and core.cost_to("A") == 0  # the larger of 7 and 3
    assert events(core) == [TopologyChanged()]


def test_hello_from_the_wrong_router_is_a_protocol_error_and_drops_the_link() -> None:
    core = router_a("B", "C")
    with pytest.raises(ProtocolError, match="HELLO from 'X' on the connection to 'B'"):
        core.receive("to-B", hello("X", "A"), 1.0)
    assert core.neighbours() == {"C": "to-C"}
    lost = [e for e in events(core) if isinstance(e, NeighbourLost)]
    assert lost == [NeighbourLost("B", "protocol error: HELLO from 'X' on the connection to 'B'")]
    assert {link for link, _ in sent(core)} == {"to-C"}  # nothing more for the dropped link
    core.receive("to-B", hello("B", "A"), 1.1)  # ignored now
    core.link_down("to-B", 1.2)  # the runtime's own link_down: a no-op
    assert core.neighbours() == {"C": "to-C"}


def test_a_neighbour_whose_hello_stops_listing_us_is_lost() -> None:
    core = router_a("B")
    core.receive("to-B", hello("B"), 1.0)
    assert core.neighbours() == {}
    assert NeighbourLost("B", "its HELLO no longer lists this router") in events(core)


def test_a_silent_neighbour_is_lost_after_hello_max_age() -> None:
    core = router_a("B")
    assert core.get_timer() == pytest.approx(TIMERS.hello_interval)
    core.handle_timer(2.9)
    assert core.neighbours() == {"B": "to-B"}
    assert ("to-B", hello("A", "B")) in sent(core)
    assert core.get_timer() == pytest.approx(3.0)  # B last heard at 0.0
    core.handle_timer(3.0)
    assert core.neighbours() == {} and core.reachable() == frozenset()
    assert events(core) == [NeighbourLost("B", "no HELLO for 3 s"), TopologyChanged()]
    assert sent(core) == [("to-B", lsu("A", 2, {}))]
    core.handle_timer(3.9)
    assert sent(core, "HELLO") == [("to-B", hello("A"))]  # B is no longer listed as heard


def test_hellos_go_out_every_interval_with_the_routers_heard() -> None:
    core = router_a("B", "C")
    core.handle_timer(1.0)
    hellos = sent(core, "HELLO")
    assert hellos == [("to-B", hello("A", "B", "C")), ("to-C", hello("A", "B", "C"))]
    assert core.get_timer() == pytest.approx(2.0)


def test_link_down_loses_the_neighbour_at_once() -> None:
    core = router_a("B", "C")
    core.link_down("to-B", 0.5)
    assert core.neighbours() == {"C": "to-C"}
    assert events(core) == [NeighbourLost("B", "connection closed"), TopologyChanged()]
    assert sent(core) == [("to-C", lsu("A", 3, {"C": 10}))]


# -- malformed messages --------------------------------------------------------------------

GOOD = [
    hello("B", "A"),
    ra("X", 1, 1, 1),
    lsu("X", 1, {"B": 1}),
    msg("LSR", "B", origin="X"),
    msg("MAR", "B", origin="X"),
    diff("X", 1, ["a"], []),
    snapshot("X", 1, ["a"]),
]

BAD: list[tuple[object, str]] = [
    ([], "must be a map"),
    ({}, "'op'"),
    (msg("PING", "B"), "unknown control message op"),
    ({**hello("B"), "pv": 2}, "speaks protocol version 2; this router speaks 1"),
    ({**hello("B"), "pv": 0}, "protocol version 0"),
    ({**hello("B"), "pv": "1"}, "'pv' must be an integer"),
    ({**hello("B"), "instance": True}, "'instance' must be an integer"),
    ({**hello("B"), "instance": -1}, "outside"),
    ({**hello("B"), "id": ""}, "1 to 255 characters"),
    ({**hello("B"), "id": "B" * 256}, "1 to 255 characters"),
    ({**hello("B"), "id": 5}, "must be a string"),
    ({k: v for k, v in hello("B").items() if k != "seen"}, "'seen' must be a list"),
    ({**hello("B"), "seen": "A"}, "'seen' must be a list"),
    ({**hello("B"), "seen": [1]}, "holds a int"),
    ({**hello("B"), "seen": ["x"] * 1025}, "at most 1024"),
    ({**ra("X", 1, 1, 1), "ra_seq": 2**63}, "outside"),
    ({**ra("X", 1, 1, 1), "ls_seq": 1.0}, "'ls_seq' must be an integer"),
    ({k: v for k, v in ra("X", 1, 1, 1).items() if k != "mobile_seq"}, "'mobile_seq'"),
    (lsu("X", 1, {"B": 0}), "cost to 'B'"),
    (lsu("X", 1, {"B": 2**31}), "cost to 'B'"),
    (lsu("X", 1, {"X": 1}), "lists itself"),
    ({**lsu("X", 1, {}), "links": [["B", 1]]}, "'links' must be a map"),
    (lsu("X", 1, {f"r{n}": 1 for n in range(1024)}), "at most 1023"),
    (msg("LSR", "B"), "'origin' must be a string"),
    (msg("MAR", "B", origin=""), "1 to 255 characters"),
    (diff("X", 1, ["a"], ["a"]), "both adds and deletes"),
    (diff("X", 0, ["a"], []), "starts at mobile_seq 1"),
    (diff("X", 1, [""], []), "a string of 0 characters"),
    (diff("X", 1, ["a" * 1025], []), "a string of 1025 characters; 1 to 1024"),
    (diff("X", 1, [f"a{n}" for n in range(10_001)], []), "at most 10000"),
    (diff("X", 1, [f"a{n}" for n in range(6000)], [f"b{n}" for n in range(6000)]), "at most 10000"),
    ({k: v for k, v in diff("X", 1, [], []).items() if k != "del"}, "'del' must be a list"),
    ({**snapshot("X", 1, []), "add": []}, "either absolute"),
    ({**snapshot("X", 1, []), "parts": 11}, "outside 1..10"),
    ({**snapshot("X", 1, []), "part": 1}, "outside 0..0"),
    ({**snapshot("X", 1, []), "exist": None}, "'exist' must be a list"),
]


@pytest.mark.parametrize(("body", "complaint"), BAD)
def test_malformed_messages_are_protocol_errors(body: object, complaint: str) -> None:
    core = router_a("B", "C")
    with pytest.raises(ProtocolError) as error:
        core.receive("to-B", body, 1.0)  # type: ignore[arg-type]
    assert complaint in error.value.description
    assert error.value.condition in (Condition.INVALID_FIELD, Condition.RESOURCE_LIMIT_EXCEEDED)
    # The core is consistent and has forgotten the link already.
    assert core.neighbours() == {"C": "to-C"}
    assert core.next_hop("B") is None
    assert all(link == "to-C" for link, _ in core.take_messages())


def test_oversized_lists_say_a_limit_was_passed() -> None:
    core = router_a("B")
    with pytest.raises(ProtocolError) as error:
        core.receive("to-B", diff("X", 1, [f"a{n}" for n in range(10_001)], []), 1.0)
    assert error.value.condition == Condition.RESOURCE_LIMIT_EXCEEDED


def test_unknown_keys_are_ignored() -> None:
    core = router_a("B")
    core.receive("to-B", {**hello("B", "A"), "future": {"x": [1, 2]}}, 1.0)
    assert core.neighbours() == {"B": "to-B"}


def _mutations(rng: random.Random, body: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    key = rng.choice(sorted(out))
    choice = rng.randrange(6)
    junk: list[object] = [
        None,
        True,
        -1,
        2**64,
        "",
        "x" * 300,
        1.5,
        [],
        {},
        [None],
        {"a": None},
        b"b",
    ]
    if choice == 0:
        del out[key]
    elif choice == 1:
        out[key] = rng.choice(junk)
    elif choice == 2 and isinstance(out[key], list):
        out[key] = out[key] + [rng.choice(junk)]
    elif choice == 3 and isinstance(out[key], dict):
        out[key] = {**out[key], rng.choice(["Z", "", 7]): rng.choice(junk)}
    elif choice == 4:
        out[rng.choice(["seen", "links", "exist", "add", "del", "origin", "part"])] = rng.choice(
            junk
        )
    else:
        out["op"] = rng.choice(["HELLO", "RA", "LSU", "LSR", "MAU", "MAR"])
    return out


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed_messages_raise_nothing_but_protocol_error(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        core = router_a("B", "C")
        behind_b(core, "X")
        body = _mutations(rng, rng.choice(GOOD))
        try:
            core.receive("to-B", body, 1.0)
        except ProtocolError:
            assert "B" not in core.neighbours()
        # Whatever happened, the core still answers and still works.
        core.handle_timer(2.0)
        core.take_messages()
        assert core.neighbours().get("C") == "to-C"
        assert core.next_hop("C") == "to-C"


def test_a_network_of_too_many_routers_is_refused() -> None:
    core = router_a("B")
    for n in range(1022):  # A, B and these: 1024 routers
        core.receive("to-B", ra(f"r{n}", 1, 1, 0), 1.0)
    core.take_messages()
    with pytest.raises(ProtocolError, match="more than 1024 routers") as error:
        core.receive("to-B", ra("one-too-many", 1, 1, 0), 1.0)
    assert error.value.condition == Condition.RESOURCE_LIMIT_EXCEEDED


def test_a_router_advertising_too_many_addresses_is_refused() -> None:
    core = router_a("B")
    behind_b(core, "X")
    core.receive("to-B", snapshot("X", 1, []), 1.0)
    for n in range(10):
        batch = [f"a{n}-{i}" for i in range(10_000)]
        core.receive("to-B", diff("X", n + 2, batch, []), 1.0)
    assert len(core.routers_for("a9-9999")) == 1
    with pytest.raises(ProtocolError, match="more than 100000 addresses"):
        core.receive("to-B", diff("X", 12, ["one-more"], []), 1.0)


# -- flooding, requests and answers -------------------------------------------------------


def test_a_newer_lsu_is_reflooded_to_all_links_but_the_one_it_came_on() -> None:
    core = router_a("B", "C", "D")
    core.receive("to-B", lsu("X", 4, {"B": 1}), 1.0)
    assert sent(core) == [("to-C", lsu("X", 4, {"B": 1})), ("to-D", lsu("X", 4, {"B": 1}))]
    core.receive("to-C", lsu("X", 4, {"B": 1}), 1.0)  # the same again, by another way
    core.receive("to-C", lsu("X", 3, {"B": 5}), 1.0)  # an older one
    assert sent(core) == []
    assert next(node for node in core.nodes() if node.id == "X").ls_seq == 4


def test_an_ra_is_reflooded_once_and_asks_for_what_is_newer() -> None:
    core = router_a("B", "C")
    core.receive("to-B", ra("X", 1, 5, 2), 1.0)
    assert sent(core) == [
        ("to-C", ra("X", 1, 5, 2)),
        ("to-B", msg("LSR", "A", origin="X")),
        ("to-B", msg("MAR", "A", origin="X")),
    ]
    core.receive("to-C", ra("X", 1, 5, 2), 1.0)  # the same RA by another way: dropped
    assert sent(core) == []
    core.receive("to-C", ra("X", 2, 5, 2), 1.5)  # a newer RA within request_retry
    assert sent(core) == [("to-B", ra("X", 2, 5, 2))]
    core.receive("to-C", ra("X", 3, 5, 2), 2.0)  # ... and after it: asked again
    assert sent(core) == [
        ("to-B", ra("X", 3, 5, 2)),
        ("to-C", msg("LSR", "A", origin="X")),
        ("to-C", msg("MAR", "A", origin="X")),
    ]
    core.receive("to-B", lsu("X", 5, {}), 2.1)
    core.receive("to-B", snapshot("X", 2, []), 2.1)
    sent(core)
    core.receive("to-C", ra("X", 4, 5, 2), 3.5)  # nothing newer: nothing asked
    assert sent(core) == [("to-B", ra("X", 4, 5, 2))]


def test_requests_are_answered_from_the_database() -> None:
    core = router_a("B", "C")
    core.add_address("mine", 0.5)
    core.receive("to-B", lsu("X", 3, {"B": 2}), 1.0)
    core.receive("to-B", snapshot("X", 4, ["x1", "x2"]), 1.0)
    sent(core)
    core.receive("to-C", msg("LSR", "C", origin="X"), 1.0)
    core.receive("to-C", msg("MAR", "C", origin="X"), 1.0)
    core.receive("to-C", msg("LSR", "C", origin="A"), 1.0)
    core.receive("to-C", msg("MAR", "C", origin="A"), 1.0)
    core.receive("to-C", msg("LSR", "C", origin="unknown"), 1.0)
    assert sent(core) == [
        ("to-C", lsu("X", 3, {"B": 2})),
        ("to-C", snapshot("X", 4, ["x1", "x2"])),
        ("to-C", lsu("A", 2, {"B": 10, "C": 10})),
        ("to-C", snapshot("A", 1, ["mine"])),
    ]


def test_a_new_neighbour_gets_the_state_of_every_router_we_reach_and_only_those() -> None:
    core = router_a("B", "D")
    behind_b(core, "X")
    core.receive("to-B", snapshot("X", 3, ["x-addr"]), 1.0)
    core.receive("to-D", lsu("Y", 1, {"Q": 1}), 1.0)  # Y: known, not reachable
    core.add_address("a-addr", 1.0)
    sent(core)
    core.link_up("to-C", "C", 5, 2.0)
    core.receive("to-C", hello("C", "A"), 2.0)
    to_c = [body for link, body in sent(core) if link == "to-C"]
    assert to_c[0] == hello("A", "B", "D")  # at link_up
    assert to_c[1] == hello("A", "B", "C", "D")  # on first hearing C
    assert to_c[2:] == [
        lsu("A", 3, {"B": 10, "C": 5, "D": 10}),
        snapshot("A", 1, ["a-addr"]),
        lsu("B", 2, {"A": 1, "X": 1}),
        lsu("D", 1, {"A": 10}),
        lsu("X", 2, {"B": 1}),
        snapshot("X", 3, ["x-addr"]),
    ]


def test_a_request_from_a_router_that_is_not_the_neighbour_is_refused() -> None:
    core = router_a("B")
    with pytest.raises(ProtocolError, match="a request from 'X' on the connection to 'B'"):
        core.receive("to-B", msg("LSR", "X", origin="A"), 1.0)


def test_messages_about_ourselves_are_not_taken_nor_reflooded() -> None:
    core = router_a("B", "C")
    core.receive("to-B", lsu("A", 99, {"Z": 1}), 1.0)
    core.receive("to-B", ra("A", 99, 99, 99), 1.0)
    core.receive("to-B", diff("A", 1, ["theirs"], []), 1.0)
    assert sent(core) == []
    assert core.local_addresses() == frozenset()
    assert next(node for node in core.nodes() if node.id == "A").ls_seq == 2


# -- mobile addresses -----------------------------------------------------------------------


def test_a_mau_in_sequence_applies_and_one_after_a_gap_asks_for_the_whole_set() -> None:
    core = router_a("B", "C")
    behind_b(core, "X")
    core.receive("to-B", snapshot("X", 1, ["q1"]), 1.0)
    assert core.routers_for("q1") == {"X"}
    assert events(core) == [AddressesChanged(frozenset({"q1"}))]
    assert sent(core) == [("to-C", snapshot("X", 1, ["q1"]))]
    # mobile_seq 3 after 1: a gap.  Not applied, not reflooded; a MAR goes back.
    core.receive("to-B", diff("X", 3, ["q3"], []), 1.1)
    assert core.routers_for("q3") == frozenset()
    assert sent(core) == [("to-B", msg("MAR", "A", origin="X"))]
    core.receive("to-B", diff("X", 2, ["q2"], ["q1"]), 1.2)
    assert core.routers_for("q2") == {"X"} and core.routers_for("q1") == frozenset()
    assert events(core) == [AddressesChanged(frozenset({"q1", "q2"}))]
    assert sent(core) == [("to-C", diff("X", 2, ["q2"], ["q1"]))]
    # The absolute answer replaces the whole set.
    core.receive("to-B", snapshot("X", 3, ["q2", "q3"]), 1.3)
    assert core.remote_addresses() == {"q2", "q3"}
    assert events(core) == [AddressesChanged(frozenset({"q3"}))]


def test_a_first_differential_mau_without_a_base_asks_for_the_set() -> None:
    core = router_a("B")
    behind_b(core, "X")
    core.receive("to-B", diff("X", 1, ["q"], []), 1.0)
    assert core.routers_for("q") == frozenset()
    assert sent(core) == [("to-B", msg("MAR", "A", origin="X"))]


def test_local_address_changes_are_coalesced_into_one_mau() -> None:
    core = router_a("B", "C")
    core.add_address("a", 1.0)
    core.add_address("b", 1.0)
    core.add_address("a", 1.0)  # idempotent
    core.add_address("c", 1.0)
    core.remove_address("c", 1.0)  # came and went before anything was sent
    core.remove_address("zzz", 1.0)  # never there
    assert sent(core) == [
        ("to-B", diff("A", 1, ["a", "b"], [])),
        ("to-C", diff("A", 1, ["a", "b"], [])),
    ]
    core.remove_address("a", 2.0)
    core.add_address("a", 2.0)  # gone and back: no change
    assert sent(core) == []
    core.remove_address("b", 3.0)
    assert sent(core, "MAU") == [
        ("to-B", diff("A", 2, [], ["b"])),
        ("to-C", diff("A", 2, [], ["b"])),
    ]
    assert core.local_addresses() == {"a"}
    assert core.routers_for("a") == frozenset()  # routers_for is about remote routers


def test_large_address_sets_travel_in_bounded_messages_and_arrive_whole() -> None:
    sender = router_a("B")
    for n in range(25_000):
        sender.add_address(f"addr-{n:05d}", 1.0)
    diffs = sent(sender)
    assert [len(body["add"]) for _, body in diffs] == [10_000, 10_000, 5_000]
    assert [body["mobile_seq"] for _, body in diffs] == [1, 2, 3]
    sender.receive("to-B", msg("MAR", "B", origin="A"), 2.0)
    parts = [body for _, body in sent(sender)]
    assert [(p["part"], p["parts"], len(p["exist"])) for p in parts] == [
        (0, 3, 10_000),
        (1, 3, 10_000),
        (2, 3, 5_000),
    ]
    # Another router (as "B"'s neighbour "A" does not matter here) assembles the parts.
    receiver = RoutingCore("Q", instance=1, now=0.0, timers=TIMERS)
    receiver.link_up("L", "A", 1, 0.0)
    receiver.receive("L", hello("A", "Q"), 0.0)
    receiver.receive("L", lsu("A", 1, {"Q": 1}), 0.0)
    events(receiver)
    for part in parts[:-1]:
        receiver.receive("L", part, 2.0)
        assert receiver.routers_for("addr-00000") == frozenset()
    receiver.receive("L", parts[-1], 2.0)
    assert len(receiver.remote_addresses()) == 25_000
    assert receiver.routers_for("addr-24999") == {"A"}


def test_snapshot_parts_out_of_order_are_a_protocol_error() -> None:
    core = router_a("B")
    first = {**snapshot("X", 1, ["a"]), "parts": 2}
    third = {**snapshot("X", 1, ["c"]), "part": 1, "parts": 3}
    core.receive("to-B", first, 1.0)
    with pytest.raises(ProtocolError, match="out of order"):
        core.receive("to-B", third, 1.0)


# -- instances and staleness ---------------------------------------------------------------


def test_a_new_instance_flushes_the_old_state_at_once() -> None:
    core = router_a("B", "C")
    behind_b(core, "X")
    core.receive("to-B", snapshot("X", 7, ["x-addr"]), 1.0)
    events(core)
    sent(core)
    assert core.reachable() == {"B", "C", "X"}
    # X restarted: its first RA has a larger instance and small sequence numbers.
    core.receive("to-B", ra("X", 1, 1, 0, instance=2), 2.0)
    assert core.routers_for("x-addr") == frozenset()
    assert core.reachable() == {"B", "C"}  # its old link state is gone too
    assert events(core) == [TopologyChanged(), AddressesChanged(frozenset({"x-addr"}))]
    out = sent(core)
    assert ("to-B", msg("LSR", "A", origin="X")) in out
    assert ("to-B", msg("MAR", "A", origin="X")) in out
    # The new instance's small sequence numbers are taken ...
    core.receive("to-B", lsu("X", 1, {"B": 1}, instance=2), 2.1)
    core.receive("to-B", snapshot("X", 0, [], instance=2), 2.1)
    assert core.reachable() == {"B", "C", "X"}
    # ... and anything still travelling from the old instance is ignored.
    core.receive("to-C", snapshot("X", 8, ["x-addr"], instance=1), 2.2)
    core.receive("to-C", lsu("X", 9, {}, instance=1), 2.2)
    assert core.routers_for("x-addr") == frozenset() and core.reachable() == {"B", "C", "X"}
    node = next(node for node in core.nodes() if node.id == "X")
    assert (node.instance, node.ls_seq, node.mobile_seq) == (2, 1, 0)


def test_a_neighbours_new_instance_in_its_hello_flushes_its_addresses() -> None:
    core = router_a()
    core.link_up("old", "B", 1, 0.0)
    core.receive("old", hello("B", "A"), 0.0)
    core.receive("old", snapshot("B", 3, ["b-addr"]), 0.0)
    core.receive("old", lsu("B", 1, {"A": 1}), 0.0)
    assert core.routers_for("b-addr") == {"B"}
    core.link_down("old", 1.0)
    assert core.routers_for("b-addr") == frozenset()  # unreachable: ignored at once
    core.link_up("new", "B", 1, 1.5)
    core.receive("new", hello("B", "A", instance=2), 1.5)
    core.receive("new", lsu("B", 1, {"A": 1}, instance=2), 1.5)
    assert core.reachable() == {"B"}
    assert core.routers_for("b-addr") == frozenset()
    assert next(node for node in core.nodes() if node.id == "B").address_count == 0


def test_state_not_refreshed_for_stale_age_is_dropped() -> None:
    timers = Timers(stale_age=10.0)
    core = RoutingCore("A", instance=1, now=0.0, timers=timers)
    core.link_up("to-B", "B", 1, 0.0)
    core.receive("to-B", hello("B", "A"), 0.0)
    core.receive("to-B", lsu("B", 1, {"A": 1}), 0.0)
    core.receive("to-B", lsu("X", 1, {"B": 1}), 0.0)
    core.receive("to-B", lsu("B", 2, {"A": 1, "X": 1}), 0.0)
    core.receive("to-B", snapshot("X", 1, ["x-addr"]), 0.0)
    assert core.routers_for("x-addr") == {"X"}
    now = 0.0
    while now < 12.0:  # B keeps saying HELLO and sending RAs; X is heard from no more
        now += 1.0
        core.receive("to-B", hello("B", "A"), now)
        core.receive("to-B", ra("B", int(now), 2, 0), now)
        core.handle_timer(now)
        core.take_messages()
        if now < 10.0:
            assert "X" in {node.id for node in core.nodes()}
    assert {node.id for node in core.nodes()} == {"A", "B"}
    assert core.routers_for("x-addr") == frozenset() and core.reachable() == {"B"}


# -- addresses and reachability -------------------------------------------------------------


def test_an_unreachable_routers_addresses_stop_counting_at_once() -> None:
    core = router_a("B", "C")
    behind_b(core, "X")
    core.receive("to-B", snapshot("X", 1, ["x-addr"]), 1.0)
    core.receive("to-B", snapshot("B", 1, ["b-addr"]), 1.0)
    events(core)
    assert core.remote_addresses() == {"x-addr", "b-addr"}
    core.link_down("to-B", 2.0)
    assert core.remote_addresses() == frozenset()
    assert core.routers_for("x-addr") == frozenset()
    changed = [e for e in events(core) if isinstance(e, AddressesChanged)]
    assert changed == [AddressesChanged(frozenset({"x-addr", "b-addr"}))]
    # B comes back: its addresses count again without being sent again.
    core.link_up("to-B2", "B", 10, 3.0)
    core.receive("to-B2", hello("B", "A"), 3.0)
    core.receive("to-B2", lsu("B", 2, {"A": 1, "X": 1}), 3.0)
    assert core.remote_addresses() == {"x-addr", "b-addr"}


# -- timers and RAs -------------------------------------------------------------------------


def test_ras_come_often_in_flux_and_seldom_once_stable() -> None:
    core = router_a("B")
    times = []
    now = 0.0
    while now < 40.0:
        now = core.get_timer() or now
        core.handle_timer(now)
        core.receive("to-B", hello("B", "A"), now)
        times += [now for _, body in core.take_messages() if body["op"] == "RA"]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps[:9] == [1.0] * 9  # the last change was at 0.0: in flux for 10 s
    assert gaps[-3:] == [5.0] * 3
    # A change brings the short interval back: the next RA comes ra_interval after the last.
    last = times[-1]
    core.add_address("new", last + 0.5)
    core.take_messages()
    while True:
        now = core.get_timer() or now
        core.handle_timer(now)
        core.receive("to-B", hello("B", "A"), now)
        if any(body["op"] == "RA" for _, body in core.take_messages()):
            break
    assert now == pytest.approx(last + 1.0)


def test_multicast_copies_are_taken_only_from_the_parent_in_the_origins_tree() -> None:
    #   A --10-- B --1-- X        X's tree reaches A through B and through C at equal
    #   A --10-- C --1-- X        cost; the lower id, B, is A's parent.
    #   A --10-- D                D hangs below A in every tree but its own.
    core = router_a("B", "C", "D")
    core.receive("to-B", lsu("B", 2, {"A": 10, "X": 1}), 1.0)
    core.receive("to-C", lsu("C", 2, {"A": 10, "X": 1}), 1.0)
    core.receive("to-B", lsu("X", 1, {"B": 1, "C": 1}), 1.0)
    assert core.valid_origin("X", "to-B") is True
    assert core.valid_origin("X", "to-C") is False
    assert core.valid_origin("B", "to-B") is True and core.valid_origin("B", "to-C") is False
    assert core.valid_origin("D", "to-D") is True
    assert core.valid_origin("A", "to-B") is False  # our own messages never come back in
    assert core.valid_origin("nobody", "to-B") is False
    assert core.valid_origin("X", "no-such-link") is False
    # A copies X's messages only to D (its one child in X's tree) and only if D wants one.
    assert core.multicast_links("X", {"D"}) == {"to-D"}
    assert core.multicast_links("X", {"B", "C", "X"}) == set()
    assert core.multicast_links("D", {"B", "C", "X"}) == {"to-B", "to-C"}
    # From A itself: to B (and X below it, by the tie-break), C and D.
    assert core.multicast_links("A", {"X"}) == {"to-B"}
    assert core.multicast_links("A", {"B", "C", "D", "X"}) == {"to-B", "to-C", "to-D"}
    assert core.multicast_links("nobody", {"B"}) == set()
    # B goes quiet: its HELLO no longer lists A.  X's copies now come by C.
    core.receive("to-B", hello("B"), 1.5)
    assert core.valid_origin("X", "to-C") is True
    assert core.valid_origin("X", "to-B") is False
    assert core.multicast_links("A", {"X"}) == {"to-C"}


def test_nodes_describe_every_known_router() -> None:
    core = router_a("B", "C")
    behind_b(core, "X")
    core.receive("to-B", snapshot("X", 2, ["x1", "x2"]), 1.0)
    nodes = {node.id: node for node in core.nodes()}
    assert list(nodes) == ["A", "B", "C", "X"]
    a, b, x = nodes["A"], nodes["B"], nodes["X"]
    assert (a.cost, a.next_hop, a.reachable, a.neighbours) == (0, None, True, {"B": 10, "C": 10})
    assert (b.cost, b.next_hop, b.neighbours) == (10, "B", {"A": 1, "X": 1})
    assert (x.cost, x.next_hop, x.address_count, x.mobile_seq) == (11, "B", 2, 2)
    # Multicast from B and X reaches A through B, from C through C.
    assert b.valid_origins == ("B", "X")
    assert nodes["C"].valid_origins == ("C",)
    assert x.valid_origins == ()  # not a neighbour
