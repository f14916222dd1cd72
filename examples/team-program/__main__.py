"""The payments team's own Pulumi program: its public DNS name, and cutover's blue-green
service (both colors behind a weighted ALB, the gate records, the watchdog) from the installed
`cutover_components` package."""

from pathlib import Path

import pulumi
import pulumi_aws as aws

from cutover_components import (
    BlueGreenService,
    BlueGreenServiceArgs,
    load_config,
    read_gate_records,
)

config = load_config()  # the stack's `cutover:` keys, validated before anything is declared
records = read_gate_records(config.gate_records, Path(__file__).resolve().parent)
service = BlueGreenService(config.service.name, BlueGreenServiceArgs(config, records))

# The team's own resources live beside it: here the service's name, on the ALB both colors
# sit behind (whichever serves, the name stays).
team = pulumi.Config("payments")
assert service.load_balancer is not None  # an ECS stack is behind the ALB
alb = service.load_balancer.load_balancer
aws.route53.Record(
    "payments-dns",
    zone_id=team.require("zoneId"),
    name=team.require("hostname"),
    type="A",
    aliases=[{"name": alb.dns_name, "zone_id": alb.zone_id, "evaluate_target_health": True}],
)
pulumi.export("url", f"https://{team.require('hostname')}")
