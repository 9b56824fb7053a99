"""xcourier's MCP side: the server, its runtime and CLI, and the X API sandbox."""

__version__ = "0.1.0"
