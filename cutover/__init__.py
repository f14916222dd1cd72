"""cutover: zero-downtime blue-green deployments with enforced gates and automatic rollback."""

__version__ = "0.1.0"
