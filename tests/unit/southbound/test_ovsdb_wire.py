"""What a host's OVSDB may send: framing limits, JSON-RPC shapes, the schema of monitored columns."""

import json

import pytest

from controller.southbound import ovsdb_model as om
from controller.southbound.ovsdb_wire import Framer, Malformed, check_message, check_system_id, check_table_updates
from tests.unit.southbound.test_ovsdb_server import initial_rows


def kind_of(fn, *args) -> str | None:
    try:
        fn(*args)
    except Malformed as e:
        return e.kind
    return None


def test_framer_cuts_messages_anywhere_and_decodes_each_once():
    msgs = [{"id": i, "method": "echo", "params": ["é}{\"", i]} for i in range(3)]
    raw = b" \n".join(json.dumps(m, ensure_ascii=False).encode() for m in msgs)
    for step in (1, 2, 7, len(raw)):
        framer, out = Framer(), []
        for i in range(0, len(raw), step):
            out += framer.feed(raw[i:i + step])
        assert out == msgs, step


@pytest.mark.parametrize("raw, kind", [
    (b"GET / HTTP/1.0\r\n", "not_json_rpc"),
    (b"[1, 2]", "not_json_rpc"),
    (b'{"id": 1, oops}', "bad_json"),
    (b'{"id": 1} {"id": 2,, }', "bad_json"),
    (b'{"a": "\xff"}', "bad_utf8"),
    (b'{"a": "' + b"x" * 2000, "too_big"),
    (b'{"a": "' + b"x" * 2000 + b'"}', "too_big"),
])
def test_framer_rejects_garbage_and_oversized_messages(raw, kind):
    assert kind_of(Framer(max_bytes=1000).feed, raw) == kind


def test_framer_rejects_deep_nesting():
    assert kind_of(Framer().feed, b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}") == "bad_json"
    assert kind_of(Framer().feed, b"{" * 100_000 + b"}" * 100_000) == "bad_json"


def test_framer_waits_for_the_rest_of_an_incomplete_message():
    framer = Framer()
    for part in (b'{"id": {"a": 1}', b', "s": "}', b'"', b"}"):
        got = framer.feed(part)
    assert got == [{"id": {"a": 1}, "s": "}"}]


def test_real_monitor_rows_fit_the_schema():
    check_table_updates(initial_rows(), {})


@pytest.mark.parametrize("updates, kind", [
    ([], "wrong_type"),
    ({"Evil": {}}, "unknown_table"),
    ({"Bridge": []}, "wrong_type"),
    ({"Bridge": {"b": "x"}}, "wrong_type"),
    ({"Bridge": {"b": {"new": 5}}}, "wrong_type"),
    ({"Bridge": {"b": {"new": {}, "extra": {}}}}, "wrong_type"),
    ({"Bridge": {"b b": {"new": {}}}}, "wrong_type"),
    ({"Bridge": {"b": {"new": {"fail_mode": "secure"}}}}, "unknown_column"),
    ({"Bridge": {"b": {"new": {"datapath_id": 5}}}}, "wrong_type"),
    ({"Bridge": {"b": {"new": {"datapath_id": "xyz"}}}}, "wrong_type"),
    ({"Bridge": {"b": {"new": {"datapath_id": ["set", ["00000000000000a1", "00000000000000a2"]]}}}}, "wrong_type"),
    ({"Bridge": {"b": {"new": {"ports": ["set", ["p1"]]}}}}, "wrong_type"),
    ({"Port": {"p": {"new": {"tag": "ten"}}}}, "wrong_type"),
    ({"Port": {"p": {"new": {"tag": True}}}}, "wrong_type"),
    ({"Interface": {"i": {"new": {"options": {"remote_ip": "x"}}}}}, "wrong_type"),
    ({"Interface": {"i": {"new": {"options": ["map", [["k", 1]]]}}}}, "wrong_type"),
    ({"Interface": {"i": {"new": {"ofport": ["set", [1, 2]]}}}}, "wrong_type"),
])
def test_schema_violations_are_named(updates, kind):
    assert kind_of(check_table_updates, updates, {}) == kind


def test_row_count_is_bounded_across_updates(monkeypatch):
    monkeypatch.setattr("controller.southbound.ovsdb_wire.MAX_ROWS_PER_TABLE", 3)
    replica: om.Replica = {}
    rows = {f"p{i}": {"new": {"name": f"p{i}"}} for i in range(3)}
    check_table_updates({"Port": rows}, replica)
    om.apply_update(replica, {"Port": rows})
    assert kind_of(check_table_updates, {"Port": {"p9": {"new": {"name": "p9"}}}}, replica) == "too_many_rows"


def test_system_ids_are_what_the_rest_api_can_name():
    ok = {"Open_vSwitch": {"o": {"external_ids": {"system-id": "host-1.example"}}}}
    check_system_id(ok)
    for bad in ("a/b", "x" * 256, "tab\there"):
        assert kind_of(check_system_id, {"Open_vSwitch": {"o": {"external_ids": {"system-id": bad}}}}) \
            == "bad_system_id"


@pytest.mark.parametrize("msg, kind", [
    ({"id": "e", "method": "echo", "params": []}, "echo"),
    ({"id": None, "method": "update", "params": [None, {}]}, "update"),
    ({"id": "monitor", "result": {}}, "monitor"),
    ({"id": 3, "result": []}, "reply"),
    ([1], "not_json_rpc"),
    ({"id": None, "method": "update", "params": {"a": 1}}, "wrong_type"),
    ({"id": 1, "method": "transact", "params": []}, "unknown_method"),
    ({"id": 4, "result": []}, "unknown_id"),
    ({"id": [3], "result": []}, "unknown_id"),
    ({"id": True, "result": []}, "unknown_id"),
])
def test_messages_are_what_ovsdb_server_sends_a_manager(msg, kind):
    try:
        assert check_message(msg, {3: "tunnels"}) == kind
    except Malformed as e:
        assert e.kind == kind


def test_a_whole_message_is_handed_over_even_when_garbage_follows_in_the_same_read():
    framer = Framer()
    with pytest.raises(Malformed) as e:
        framer.feed(b'{"id": "monitor", "result": {}}\r\nGET / HTTP/1.0\r\n')
    assert e.value.kind == "not_json_rpc"
    assert Framer().feed(b'{"id": 1, "s": "a\\\\"}{"id": 2, "s": "\\"}"}') == [{"id": 1, "s": "a\\"},
                                                                           {"id": 2, "s": '"}'}]
