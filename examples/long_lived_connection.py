import websocket
def on_message(ws, message):
    print("received message as {}".format(message))
    ws.send("hello again")
    print("sending 'hello again'")
def on_error(ws, error):
    print("received error as {}".format(error))
def on_close(ws):
    print("Connection closed")
def on_open(ws):
    ws.send("hello there")
    print("sent message on open")
if __name__ == "__main__":
    websocket.enableTrace(True)
    ws = websocket.WebSocketApp("ws://localhost:4040/", on_message = on_message, on_error = on_error, on_close = on_close)
    ws.on_open = on_open
    ws.run_forever()
