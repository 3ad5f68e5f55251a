"""Names and values of websocket-client 1.9.2's public constants, shared by the tests
that check them (test_core_api.py, test_pure_modules.py)."""

#: The close status codes websocket._abnf exports, in its __all__ order.
STATUS = {
    "STATUS_NORMAL": 1000,
    "STATUS_GOING_AWAY": 1001,
    "STATUS_PROTOCOL_ERROR": 1002,
    "STATUS_UNSUPPORTED_DATA_TYPE": 1003,
    "STATUS_STATUS_NOT_AVAILABLE": 1005,
    "STATUS_ABNORMAL_CLOSED": 1006,
    "STATUS_INVALID_PAYLOAD": 1007,
    "STATUS_POLICY_VIOLATION": 1008,
    "STATUS_MESSAGE_TOO_BIG": 1009,
    "STATUS_INVALID_EXTENSION": 1010,
    "STATUS_UNEXPECTED_CONDITION": 1011,
    "STATUS_SERVICE_RESTART": 1012,
    "STATUS_TRY_AGAIN_LATER": 1013,
    "STATUS_BAD_GATEWAY": 1014,
    "STATUS_TLS_HANDSHAKE_ERROR": 1015,
}
