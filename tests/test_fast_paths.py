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
