"""Where `serve` listens: loopback unless HOST says otherwise (a container sets HOST=0.0.0.0); a started service
keeps what it started with out of the garbage collector's passes."""

from __future__ import annotations

import gc

import pytest
from asgi_lifespan import LifespanManager

from services.registry.app import create_app as create_registry_app
from services.registry.settings import RegistrySettings
from shared.cli import server_options
from shared.settings import DEV_JWT_SECRET, ServiceSettings


def test_services_listen_on_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOST", raising=False)
    options = server_options("registry", ServiceSettings(port=8001))
    assert (options["host"], options["port"]) == ("127.0.0.1", 8001)


def test_host_overrides_the_listening_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("AUTH_JWT_SECRET", "a-secret-of-this-deployment-only-0123456789")
    assert server_options("household", ServiceSettings())["host"] == "0.0.0.0"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_the_development_secret_is_accepted_on_loopback_only(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    """Tokens signed with the published secret must not open personal data to the network."""
    monkeypatch.setenv("HOST", host)
    with pytest.raises(ValueError, match="development secret is public"):
        ServiceSettings()
    for loopback in ("127.0.0.1", "::1", "localhost"):
        assert ServiceSettings(host=loopback).auth_jwt_secret == DEV_JWT_SECRET


def test_production_has_no_shared_secret_unless_given() -> None:
    """The Kubernetes settings (JWKS, no AUTH_JWT_SECRET) must start: the development default is local only."""
    settings = ServiceSettings(environment="production", host="0.0.0.0", auth_jwks_url="https://sso.example/jwks",
                               auth_algorithms="RS256,ES256")
    assert settings.auth_jwt_secret is None


@pytest.mark.parametrize("host", ["", "   ", "not a host", "http://0.0.0.0"])
def test_a_host_that_is_not_an_address_is_refused(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("HOST", host)
    with pytest.raises(ValueError, match="host"):
        ServiceSettings()


async def test_a_started_service_freezes_what_it_started_with_until_it_stops(
        registry_settings: RegistrySettings) -> None:
    app = create_registry_app(registry_settings)
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
