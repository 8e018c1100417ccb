"""The registry service's settings: the shared ones, with its own port and the clock."""

from pydantic import Field

from shared.clock import Clock, system_clock
from shared.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    port: int | None = 8001
    # The time source of every "now" and "today" in the registry (the times a change stamps, the months a schedule
    # event lists); tests inject their own.
    clock: Clock = Field(default=system_clock, exclude=True)
