"""The registry service's settings: the shared ones, with its own port."""

from shared.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    port: int | None = 8001
