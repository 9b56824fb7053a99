"""Each hosted instance announces the address it listens on as its own; a shared --public-url (the
balancer's, or the first instance's) is named as such, never as where the instance itself serves."""

from __future__ import annotations

from .conftest import Launcher


def test_a_second_instance_announces_its_own_address_and_the_shared_public_url(launcher: Launcher):
    first = launcher.start()
    second = launcher.start(public_url=first.origin)  # its URL found from its listening socket
    assert second.url != first.url
    said = "".join(second.stderr)
    assert f"xcourier: serving MCP over streamable HTTP at {second.url}\n" in said
    assert f"xcourier: clients reach this server through its --public-url, {first.url}\n" in said
    assert f"streamable HTTP at {first.url}" not in said
    # Without --public-url there is one address, announced once.
    assert "--public-url" not in "".join(first.stderr)
