"""``python -m websocket ws://host/path``: the ``wsdump`` tool (see ``websocket._wsdump``)."""

from ._wsdump import main

if __name__ == "__main__":
    main()
