"""The household service's settings: the shared ones, with its own port."""

from shared.settings import ServiceSettings


class HouseholdSettings(ServiceSettings):
    port: int | None = 8002
