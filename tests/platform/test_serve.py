"""Where `serve` listens: loopback unless HOST says otherwise (a container sets HOST=0.0.0.0)."""

from __future__ import annotations

import pytest

from shared.cli import server_options
from shared.settings import ServiceSettings


def test_services_listen_on_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOST", raising=False)
    options = server_options("registry", ServiceSettings(port=8001))
    assert (options["host"], options["port"]) == ("127.0.0.1", 8001)


def test_host_overrides_the_listening_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")
    assert server_options("household", ServiceSettings())["host"] == "0.0.0.0"


@pytest.mark.parametrize("host", ["", "   ", "not a host", "http://0.0.0.0"])
def test_a_host_that_is_not_an_address_is_refused(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("HOST", host)
    with pytest.raises(ValueError, match="host"):
        ServiceSettings()
