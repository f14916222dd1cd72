"""What the helper's tests share: a moto server on 127.0.0.1 with the stack the program creates."""

from tests.harness.aws_stack import aws, aws_session  # noqa: F401 (fixtures)
