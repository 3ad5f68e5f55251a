"""The shortcuts taken for speed (bench/RESULTS.md) keep the documented behaviour: recv() of
messages already queued (taken without releasing the GIL or the reference's readlock), and
WebSocketApp calling on_message directly inside a batch."""

import select
import time

import pytest

import websocket
from websocket import WebSocketApp

pytestmark = pytest.mark.timeout(30)


def wait_queued(ws):
    """Until something has arrived, and a moment more for the rest of a push."""
    assert select.select([ws.sock], [], [], 5)[0], "nothing arrived"
    time.sleep(0.2)


def test_recv_of_queued_messages_keeps_order_types_and_close(echo_url):
    ws = websocket.create_connection(echo_url + "/push?n=50")
    wait_queued(ws)
    assert [ws.recv() for _ in range(50)] == [f"msg-{i}" for i in range(50)]
    ws.send_binary(b"\x00\xff")
    ws.send("after")
    wait_queued(ws)
    assert ws.recv() == b"\x00\xff"
    assert ws.recv() == "after"
    ws.send_close()
    wait_queued(ws)
    assert ws.recv() == ""
    ws.close()


def test_recv_still_raises_once_closed(echo_url):
    ws = websocket.create_connection(echo_url + "/")
    ws.close()
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        ws.recv()


def test_on_message_replaced_inside_a_batch_takes_effect_at_once(echo_url):
    got = []

    def second(app, msg):
        got.append(("second", msg))
        if msg == "msg-99":
            app.close()

    def first(app, msg):
        got.append(("first", msg))
        app.on_message = second

    app = WebSocketApp(echo_url + "/push?n=100", on_message=first)
    assert app.run_forever() is False
    assert got == [("first", "msg-0")] + [("second", f"msg-{i}") for i in range(1, 100)]


def test_on_data_set_inside_a_batch_is_called_for_the_next_message(echo_url):
    got = []

    def on_data(app, data, opcode, fin):
        got.append(("data", data))

    def on_message(app, msg):
        got.append(("message", msg))
        app.on_data = on_data
        if msg == "msg-2":
            app.close()

    app = WebSocketApp(echo_url + "/push?n=3", on_message=on_message)
    assert app.run_forever() is False
    assert got == [("message", "msg-0"), ("data", "msg-1"), ("message", "msg-1"), ("data", "msg-2"), ("message", "msg-2")]


def test_on_message_error_goes_to_on_error_inside_a_batch(echo_url):
    got = []

    def on_message(app, msg):
        if msg == "msg-1":
            raise ValueError(msg)
        got.append(msg)
        if msg == "msg-4":
            app.close()

    app = WebSocketApp(echo_url + "/push?n=5", on_message=on_message, on_error=lambda app, e: got.append(repr(e)))
    assert app.run_forever() is False
    assert got == ["msg-0", "ValueError('msg-1')", "msg-2", "msg-3", "msg-4"]


# recv() is a method of the compiled base class (WebSocketBase) on this project: what Python
# code does with the method and the attributes it reads must keep working as with a Python
# method.


def test_recv_patched_on_the_class_or_overridden_in_a_subclass_wins(echo_url):
    from unittest import mock

    class Tagged(websocket.WebSocket):
        def recv(self):
            return ("tagged", super().recv())

    ws = websocket.create_connection(echo_url + "/", class_=Tagged)
    ws.send("one")
    assert ws.recv() == ("tagged", "one")
    ws.close()
    ws = websocket.create_connection(echo_url + "/")
    with mock.patch.object(websocket.WebSocket, "recv", return_value="patched"):
        assert ws.recv() == "patched"
    ws.send("two")
    assert ws.recv() == "two"
    ws.close()


def test_recv_reads_the_timeout_and_fire_cont_frame_at_each_call(echo_url):
    ws = websocket.create_connection(echo_url + "/fragments")
    assert ws.recv() == "frag1 frag2 frag3"
    ws.settimeout(0.2)
    # The binary message is queued by now or arrives within the timeout.
    assert ws.recv() == b"\x01\x02\x03\x04\x05"
    t0 = time.monotonic()
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()
    assert 0.15 < time.monotonic() - t0 < 3
    ws.settimeout(None)
    ws.fire_cont_frame = True
    ws.send("after")
    assert ws.recv() == "after"
    ws.close()


def test_a_websocket_in_a_reference_cycle_through_its_attributes_is_collected():
    import gc
    import weakref

    class Holder:
        pass

    for attr in ("_conn", "sock_opt", "fire_cont_frame"):
        ws = websocket.WebSocket()
        holder = Holder()
        holder.ws = ws
        setattr(ws, attr, holder)
        assert getattr(ws, attr) is holder
        ref = weakref.ref(ws)
        del ws, holder
        gc.collect()
        assert ref() is None, f"a cycle through {attr} was not collected"
    # Cycles that only go through the compiled fields.
    for attr in ("_conn", "sock_opt", "fire_cont_frame"):
        ws = websocket.WebSocket()
        setattr(ws, attr, ws)
        ref = weakref.ref(ws)
        del ws
        gc.collect()
        assert ref() is None, f"a WebSocket held by its own {attr} was not collected"
    opt = websocket.sock_opt(None, None)
    opt.timeout = opt
    ref = weakref.ref(opt)
    del opt
    gc.collect()
    assert ref() is None, "a sock_opt held by its own timeout was not collected"
