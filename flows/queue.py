"""The event queue (SQS API: AWS SQS in production, moto's server locally): receive and acknowledge.

A message is deleted (acknowledged) only after the runs it asks for were dispatched: a bridge that dies
in between leaves the message to reappear after its visibility timeout, and the idempotency key makes
the second dispatch a no-op.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flows.settings import PipelineSettings
from flows.storage import classify, make_client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    receipt: str
    body: str
    receive_count: int


class EventQueue:
    def __init__(self, client: Any, url: str, *, visibility_timeout: int = 60) -> None:
        self.client = client
        self.url = url
        self.visibility_timeout = visibility_timeout

    @classmethod
    def connect(cls, settings: PipelineSettings) -> EventQueue:
        if not settings.queue_url:
            raise ValueError("no queue configured (PROOFCHECK_QUEUE_URL)")
        return cls(make_client(settings, "sqs"), settings.queue_url)

    @staticmethod
    def create(settings: PipelineSettings, name: str) -> tuple[str, str]:
        """Create a queue (local setups); returns its URL and ARN."""
        client = make_client(settings, "sqs")
        url: str = client.create_queue(QueueName=name)["QueueUrl"]
        arn: str = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return url, arn

    def receive(self, wait_seconds: int = 1, max_messages: int = 10) -> list[Message]:
        try:
            answer = self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=self.visibility_timeout,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "receive events") from None
        return [
            Message(
                receipt=item["ReceiptHandle"],
                body=item.get("Body", ""),
                receive_count=int(item.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
            )
            for item in answer.get("Messages", [])
        ]

    def ack(self, message: Message) -> None:
        try:
            self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt)
        except (ClientError, BotoCoreError) as exc:
            # Not fatal: the message comes back and its dispatch is idempotent.
            log.warning("could not acknowledge an event: %s", classify(exc, "ack"))
