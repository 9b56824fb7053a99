"""Hosted mode: many users on one streamable HTTP endpoint, MCP authorization bridged to X."""
