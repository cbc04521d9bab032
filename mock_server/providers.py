"""The built-in providers, in routing order: the one list a new provider joins."""

from __future__ import annotations

from mock_server.afterpay.provider import AfterpayProvider
from mock_server.core.providers import Registry
from mock_server.optty.provider import OpttyProvider

DESCRIPTION = ("Seeds merchants, Afterpay payments and Optty orders, and adds fault rules. "
               "YAML or JSON. Money amounts are strings such as \"120.00\".")


def registry() -> Registry:
    """Afterpay and Optty; a path no provider owns is answered in Optty's shape."""
    return Registry([AfterpayProvider(), OpttyProvider()], fallback="optty",
                    description=DESCRIPTION)
