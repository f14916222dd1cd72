"""Each layer's fixtures live in its own conftest.py, so `pytest tests/unit` imports neither
moto, boto3's servers, Pulumi nor the rehearsal."""
