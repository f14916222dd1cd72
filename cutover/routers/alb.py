"""The ALB router: weights of the production listener's forward action."""

from __future__ import annotations

from typing import Any

from cutover_gates.contract import COLORS

from cutover.aws import longest_call_seconds
from cutover.errors import ConfigError
from cutover.routers.fence import Fence, no_fence
from cutover.weights import Weights, check_weights


class AlbRouter:
    """Weighted forward action of one ALB listener between the blue and green target groups.

    A listener takes no precondition on a write, so a late write is fenced by its writer
    (the lease must cover it, and it is confirmed after) and by whoever took the lease over
    (it re-verifies its restore once a write can no longer land).
    """

    def __init__(
        self, listener_arn: str, target_group_arns: dict[str, str], name: str, elbv2: Any
    ) -> None:
        self.elbv2 = elbv2  # a boto3 elbv2 client
        self.listener_arn = listener_arn
        self.target_group_arns = target_group_arns
        self.color_of = {arn: color for color, arn in target_group_arns.items()}
        self.name = name

    @property
    def longest_write(self) -> float:
        return longest_call_seconds()

    def _action(self) -> dict[str, Any]:
        try:
            listeners = self.elbv2.describe_listeners(ListenerArns=[self.listener_arn])["Listeners"]
        except self.elbv2.exceptions.ListenerNotFoundException:
            raise ConfigError(
                f"{self.name}: listener {self.listener_arn} does not exist; are the outputs "
                "those of this stack's last `pulumi up`?"
            ) from None
        actions = listeners[0]["DefaultActions"]
        forwards = [a for a in actions if a["Type"] == "forward"]
        if len(actions) != 1 or not forwards:
            raise ConfigError(
                f"{self.name}: listener {self.listener_arn} has {len(actions)} default action(s); "
                "expected one forward action (is this a cutover stack's production listener?)"
            )
        return forwards[0]

    def snapshot(self) -> dict[str, Any]:
        action = self._action()
        config = action.get("ForwardConfig") or {
            "TargetGroups": [{"TargetGroupArn": action["TargetGroupArn"], "Weight": 1}]
        }
        groups = [
            {"TargetGroupArn": g["TargetGroupArn"], "Weight": int(g.get("Weight", 1))}
            for g in config["TargetGroups"]
        ]
        unknown = [g["TargetGroupArn"] for g in groups if g["TargetGroupArn"] not in self.color_of]
        if unknown:
            raise ConfigError(
                f"{self.name}: listener forwards to {unknown[0]}, which is neither color's target group"
            )
        stickiness = config.get("TargetGroupStickinessConfig") or {"Enabled": False}
        return {"targetGroups": groups, "stickiness": stickiness}

    def weights_of(self, snapshot: dict[str, Any]) -> Weights:
        weights: Weights = {c: 0 for c in COLORS}
        for group in snapshot["targetGroups"]:
            weights[self.color_of[group["TargetGroupArn"]]] += group["Weight"]
        return check_weights(weights)

    def served(self) -> Weights:
        return self.weights_of(self.snapshot())

    def _write(self, groups: list[dict[str, Any]], stickiness: dict[str, Any]) -> None:
        self.elbv2.modify_listener(
            ListenerArn=self.listener_arn,
            DefaultActions=[
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": groups,
                        "TargetGroupStickinessConfig": stickiness,
                    },
                }
            ],
        )

    def set(self, weights: Weights, fence: Fence = no_fence) -> None:
        weights = check_weights(weights)
        groups = [
            {"TargetGroupArn": self.target_group_arns[c], "Weight": weights[c]} for c in COLORS
        ]
        fence()
        self._write(groups, {"Enabled": False})

    def restore(self, snapshot: dict[str, Any], fence: Fence = no_fence) -> None:
        self.weights_of(snapshot)  # never write a split that serves nothing
        fence()
        self._write(snapshot["targetGroups"], snapshot["stickiness"])
