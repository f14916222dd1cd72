"""A service of a release: its stack outputs, its traffic router and its fleet."""

from __future__ import annotations

from dataclasses import dataclass

from cutover.errors import ConfigError
from cutover.fleet import Fleet, fleet_of
from cutover.outputs import StackOutputs
from cutover.routers import TrafficRouter, router_for


@dataclass
class Service:
    outputs: StackOutputs
    router: TrafficRouter
    fleet: Fleet

    @property
    def key(self) -> str:
        """What the journal and the lock know this service's routing by."""
        return self.outputs.route_key


def services_of(all_outputs: list[StackOutputs]) -> list[Service]:
    """One Service per stack's outputs; the same listener or route twice is refused."""
    keys = [o.route_key for o in all_outputs]
    if len(set(keys)) != len(keys):
        raise ConfigError("two --outputs name the same listener or route; give each service once")
    return [Service(o, router_for(o), fleet_of(o)) for o in all_outputs]
